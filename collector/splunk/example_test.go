package splunk_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/splunk"
)

// A sink posting to HEC with the token read from a file. The stand-in HEC
// here accepts everything, as Splunk answers a good request.
func ExampleNew() {
	hec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"text":"Success","code":0}`)
	}))
	defer hec.Close()
	dir, _ := os.MkdirTemp("", "hec")
	defer os.RemoveAll(dir)
	tokenFile := filepath.Join(dir, "hec.token")
	_ = os.WriteFile(tokenFile, []byte("11111111-2222-3333-4444-555555555555\n"), 0o600)

	s, err := splunk.New(splunk.Config{URL: hec.URL, TokenFile: tokenFile, Index: "ocsf"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close(context.Background())

	out := s.Write(context.Background(), []collector.Event{{
		UID: "019ac635-b71c-7001-80dd-3c9e861d7f43", ClassUID: 2003, ClassName: "Compliance Finding",
		SeverityID: 1, Time: 1764170001123, Host: "host-1",
		Data: []byte(`{"class_uid":2003,"time":1764170001123,"metadata":{"uid":"019ac635-b71c-7001-80dd-3c9e861d7f43"}}`),
	}})
	fmt.Println(out[0].Status, splunk.Sourcetype("Compliance Finding", 2003))
	// Output: delivered ocsf:compliance_finding
}
