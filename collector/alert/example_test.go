package alert_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/alert"
)

// A refused launch (its Compliance Finding, Detection Finding and Launch
// event) becomes one webhook alert; a passing control's finding is
// acknowledged without a request.
func Example() {
	got := make(chan alert.Payload, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p alert.Payload
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &p)
		got <- p
	}))
	defer srv.Close()

	s, err := alert.New(alert.Config{URL: srv.URL})
	if err != nil {
		panic(err)
	}
	defer s.Close(context.Background())
	const run = "019ac632-a840-7000-80b2-3c9ee91d7f42"
	ev := func(uid string, class int, data string) collector.Event {
		return collector.Event{UID: uid, ClassUID: class, RunID: run, Data: []byte(data)}
	}
	outs := s.Write(context.Background(), []collector.Event{
		ev("e0", 2003, `{"class_uid":2003,"severity_id":1,"compliance":{"control":"seccomp","status_id":1,"status":"Pass"}}`),
		ev("e1", 2003, `{"class_uid":2003,"severity_id":4,"device":{"hostname":"build-12"},"policy":{"name":"ci-untrusted"},
			"compliance":{"control":"landlock","status_id":3,"status":"Fail","status_code":"EOPNOTSUPP",
			"status_details":["Landlock is not in the kernel's LSM list"]}}`),
		ev("e2", 2004, `{"class_uid":2004,"severity_id":4,"is_alert":true,"action_id":2,
			"finding_info":{"analytic":{"name":"landlock"},"title":"Sandbox refused: required control landlock failed"},
			"remediation":{"desc":"Add landlock to the lsm= kernel parameter and reboot."}}`),
		ev("e3", 1007, `{"class_uid":1007,"activity_id":1,"severity_id":4,"status_id":2,
			"metadata":{"event_code":"LAUNCH_REFUSED"},"status_detail":"required control landlock failed"}`),
	})
	fmt.Println(outs[0].Status, outs[1].Status, outs[2].Status, outs[3].Status)
	a := (<-got).Alerts[0]
	fmt.Printf("%s %s\n%s\n%s\n", a.Name, a.Severity, a.Summary, a.Remediation)
	fmt.Println(strings.Split(a.Description, "\n")[1])
	// Output:
	// delivered delivered delivered delivered
	// SandboxRefused high
	// sandbox refused on build-12 (policy ci-untrusted): required control failed: landlock (EOPNOTSUPP)
	// landlock: Add landlock to the lsm= kernel parameter and reboot.
	// - landlock: Fail (EOPNOTSUPP): Landlock is not in the kernel's LSM list
}
