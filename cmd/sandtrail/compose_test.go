package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"
)

// There is no Docker engine on the project's machines, so docker-compose.yml
// is not run; this test keeps it well-formed and consistent: strict YAML,
// the three services, sandtrail commands that exist, and mounted files
// that exist in the repository.
func TestComposeFile(t *testing.T) {
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	type service struct {
		Image       string   `yaml:"image"`
		Build       string   `yaml:"build"`
		Command     []string `yaml:"command"`
		Volumes     []string `yaml:"volumes"`
		Ports       []string `yaml:"ports"`
		Secrets     []string `yaml:"secrets"`
		DependsOn   []string `yaml:"depends_on"`
		CapAdd      []string `yaml:"cap_add"`
		SecurityOpt []string `yaml:"security_opt"`
	}
	var doc struct {
		Services map[string]service           `yaml:"services"`
		Secrets  map[string]map[string]string `yaml:"secrets"`
		Volumes  map[string]any               `yaml:"volumes"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range []string{"nats", "collector", "supervisor"} {
		if _, ok := doc.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	for name, s := range doc.Services {
		if s.Build != "" {
			if len(s.Command) == 0 || !slices.Contains(names, s.Command[0]) {
				t.Errorf("service %s runs %v: not a sandtrail command", name, s.Command)
			}
			if _, err := os.Stat(filepath.Join("../..", s.Build, "Dockerfile")); err != nil {
				t.Errorf("service %s: %v", name, err)
			}
		}
		for _, v := range s.Volumes {
			src := v[:bytes.IndexByte([]byte(v), ':')]
			if src[0] == '.' {
				if _, err := os.Stat(filepath.Join("../..", src)); err != nil {
					t.Errorf("service %s mounts %s: %v", name, src, err)
				}
			} else if _, ok := doc.Volumes[src]; !ok {
				t.Errorf("service %s mounts undeclared volume %s", name, src)
			}
		}
		for _, sec := range s.Secrets {
			if _, ok := doc.Secrets[sec]; !ok {
				t.Errorf("service %s uses undeclared secret %s", name, sec)
			}
		}
		for _, d := range s.DependsOn {
			if _, ok := doc.Services[d]; !ok {
				t.Errorf("service %s depends on unknown %s", name, d)
			}
		}
	}
}
