package main

import "testing"

// The generator's inputs live outside the repository (the compiled OCSF
// schema); .ci/check-generated regenerates and compares when it is there.
// These tests pin the naming rules every generated identifier follows.
func TestNaming(t *testing.T) {
	for in, want := range map[string]string{
		"class_uid": "ClassUID", "metadata": "Metadata", "cpid": "CPID", "parent_process": "ParentProcess",
		"ip": "IP", "tls_extension": "TLSExtension", "is_alert": "IsAlert", "d3f_tactic": "D3FTactic",
	} {
		if got := goFieldName(in); got != want {
			t.Errorf("goFieldName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"Protection off": "ProtectionOff", "At Risk": "AtRisk", "Compliance Finding: Create": "ComplianceFindingCreate",
		"server_name": "ServerName", "3DES": "N3DES", "": "",
	} {
		if got := identifier(in); got != want {
			t.Errorf("identifier(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPatternsAreAnchored(t *testing.T) {
	for name, p := range patterns {
		if p[0] != '^' || p[len(p)-1] != '$' {
			t.Errorf("pattern of %s is not anchored: JSON Schema patterns are unanchored searches", name)
		}
	}
}
