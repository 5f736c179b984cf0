package elastic_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/elastic"
)

// A sink creating documents in the default data stream. The stand-in
// cluster prints the bulk body and answers the way Elasticsearch does when
// the document was created by an earlier delivery: 409, counted delivered.
func ExampleNew() {
	es := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Print(string(b))
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"took":1,"errors":true,"items":[{"create":{"_id":"e-1","status":409,"error":{"type":"version_conflict_engine_exception","reason":"[e-1]: version conflict, document already exists"}}}]}`)
	}))
	defer es.Close()

	s, err := elastic.New(elastic.Config{URL: es.URL})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close(context.Background())
	out := s.Write(context.Background(), []collector.Event{{
		UID: "e-1", ClassUID: 2003, Time: 1764170001123,
		Data: []byte(`{"class_uid":2003,"time":1764170001123,"metadata":{"uid":"e-1"}}`),
	}})
	fmt.Println(out[0].Status)
	// Output:
	// {"create":{"_index":"logs-ocsf.sandtrail-default","_id":"e-1"}}
	// {"@timestamp":"2025-11-26T15:13:21.123Z","class_uid":2003,"time":1764170001123,"metadata":{"uid":"e-1"}}
	// delivered
}
