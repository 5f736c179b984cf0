package collector_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/chain"
	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/ndjson"
	"github.com/sandtrail/sandtrail/collector/sinktest"
	"github.com/sandtrail/sandtrail/schema"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	goleak.VerifyTestMain(m)
}

// only2003 keeps the test events (Compliance Findings) and leaves out the
// collector's own lifecycle events.
var only2003 = collector.Filter{Classes: []int{2003}}

// interleave mixes runs the way concurrent sandboxes publish them.
func interleave(runs ...[]collector.Event) []collector.Event {
	var out []collector.Event
	for i := 0; ; i++ {
		added := false
		for _, r := range runs {
			if i < len(r) {
				out = append(out, r[i])
				added = true
			}
		}
		if !added {
			return out
		}
	}
}

// A sink that is down for 30 s (far longer than AckWait) and recovers gets
// every event exactly once here, in order within each run: the failed
// batch is held and kept alive with in-progress acknowledgements, not
// redelivered behind later events.
func TestAtLeastOnceThroughOutage(t *testing.T) {
	e := startEnv(t, 0)
	dir := t.TempDir()
	nd, err := ndjson.New(ndjson.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	fl := &flaky{Sink: nd}
	c, _ := newCollector(t, e, collector.Config{
		MaxFailing: 300 * time.Millisecond,
		Sinks:      []collector.SinkConfig{{Name: "files", Type: "ndjson", Sink: fl, MaxEvents: 50, AckWait: time.Second, Filter: only2003}},
	})
	all := interleave(sinktest.Events(200), sinktest.Events(200), sinktest.Events(200))
	want := uids(all)
	e.publish(t, all[:150])
	waitFor(t, 20*time.Second, "the first events", func() bool { return len(readNDJSON(t, dir)) >= 100 })

	fl.down.Store(true)
	e.publish(t, all[150:])
	waitFor(t, 10*time.Second, "the sink to be reported failing", func() bool { return c.Health() != nil })
	if err := c.Health(); !strings.Contains(err.Error(), "flaky: receiver unreachable") {
		t.Errorf("Health: %v; want the sink's reason", err)
	}
	// The outage is 30 s, thirty times AckWait: held messages must
	// be kept alive and must not come back behind later ones.
	outage := 30 * time.Second
	if testing.Short() {
		outage = 2500 * time.Millisecond
	}
	time.Sleep(outage)
	fl.down.Store(false)

	waitFor(t, 30*time.Second, "every event", func() bool { return hasAll(readNDJSON(t, dir), want) == 0 })
	lines := readNDJSON(t, dir)
	if dups := checkOrderPerRun(t, lines); dups != 0 {
		t.Errorf("%d duplicates; an outage should cause none", dups)
	}
	if err := c.Health(); err != nil {
		t.Errorf("Health after recovery: %v", err)
	}
	reg := c.Registry()
	if n := metric(t, reg, "sandtrail_collector_events_retried_total", "sink", "files"); n == 0 {
		t.Error("events_retried_total is 0 after an outage")
	}
	if n := metric(t, reg, "sandtrail_collector_events_exported_total", "sink", "files"); n != float64(len(all)) {
		t.Errorf("events_exported_total = %v, want %d", n, len(all))
	}
}

// One broken sink holds up no other: each has its own consumer.
func TestSinksAreIndependent(t *testing.T) {
	e := startEnv(t, 0)
	broken := &memSink{fail: func(collector.Event) collector.Outcome {
		return collector.Outcome{Status: collector.Retry, Reason: "connection refused"}
	}}
	good := &memSink{}
	c, _ := newCollector(t, e, collector.Config{
		MaxFailing: 200 * time.Millisecond,
		Sinks: []collector.SinkConfig{
			{Name: "broken", Sink: broken, MaxEvents: 20, Filter: only2003},
			{Name: "good", Sink: good, MaxEvents: 20, Filter: only2003},
		},
	})
	evs := sinktest.Events(300)
	e.publish(t, evs)
	waitFor(t, 20*time.Second, "the good sink to get every event", func() bool { return len(good.events()) == len(evs) })
	for i, ev := range good.events() {
		if ev.UID != evs[i].UID {
			t.Fatalf("good sink, event %d: %s, want %s", i, ev.UID, evs[i].UID)
		}
	}
	waitFor(t, 10*time.Second, "the broken sink to be unhealthy", func() bool { return c.Health() != nil })
	err := c.Health()
	if !strings.Contains(err.Error(), "sink broken") || strings.Contains(err.Error(), "sink good") {
		t.Errorf("Health: %v; want the broken sink only", err)
	}
	waitFor(t, 5*time.Second, "the lag of the broken sink", func() bool {
		return metric(t, c.Registry(), "sandtrail_collector_consumer_pending_events", "sink", "broken") > 0
	})
	if n := len(broken.events()); n != 0 {
		t.Errorf("the broken sink delivered %d events", n)
	}
}

// Filters become consumer filter subjects: each sink gets only its events.
func TestFilters(t *testing.T) {
	e := startEnv(t, 0)
	sinks := map[string]*memSink{"all": {}, "detections": {}, "high": {}, "web": {}, "mixed": {}}
	c, _ := newCollector(t, e, collector.Config{Sinks: []collector.SinkConfig{
		{Name: "all", Sink: sinks["all"]},
		{Name: "detections", Sink: sinks["detections"], Filter: collector.Filter{Classes: []int{2004}}},
		{Name: "high", Sink: sinks["high"], Filter: collector.Filter{MinSeverity: 4}},
		{Name: "web", Sink: sinks["web"], Filter: collector.Filter{Hosts: []string{"Web-1.example.com"}}},
		{Name: "mixed", Sink: sinks["mixed"], Filter: collector.Filter{Classes: []int{2003, 2004}, MinSeverity: 3, Hosts: []string{"db"}}},
	}})
	_ = c
	type route struct {
		class, sev int
		host       string
	}
	routes := []route{
		{2003, 1, "web-1.example.com"}, {2004, 4, "db"}, {2004, 2, "web-1.example.com"},
		{2003, 5, "db"}, {1007, 99, "db"}, {2003, 3, "other"}, {5019, 6, "web-1.example.com"},
	}
	evs := sinktest.Events(len(routes))
	for i := range evs {
		evs[i].Subject = bus.EventSubject(routes[i].class, routes[i].sev, routes[i].host)
	}
	e.publish(t, evs)
	want := map[string][]int{
		"all":        {0, 1, 2, 3, 4, 5, 6},
		"detections": {1, 2},
		"high":       {1, 3, 4, 6},
		"web":        {0, 2, 6},
		"mixed":      {1, 3},
	}
	for name, idx := range want {
		waitFor(t, 10*time.Second, name, func() bool { return len(sinks[name].events()) >= len(idx) })
	}
	time.Sleep(300 * time.Millisecond) // anything extra would have arrived
	for name, idx := range want {
		var got []int
		for _, ev := range sinks[name].events() {
			if i := slices.IndexFunc(evs, func(x collector.Event) bool { return x.UID == ev.UID }); i >= 0 {
				got = append(got, i) // the collector's own lifecycle events aside
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, idx) {
			t.Errorf("sink %s got events %v, want %v", name, got, idx)
		}
	}
}

func TestFilterSubjects(t *testing.T) {
	for _, tc := range []struct {
		f    collector.Filter
		want []string
		err  string
	}{
		{collector.Filter{}, []string{"sandtrail.events.>"}, ""},
		{collector.Filter{Classes: []int{2004, 2003, 2004}}, []string{"sandtrail.events.2003.>", "sandtrail.events.2004.>"}, ""},
		{collector.Filter{MinSeverity: 5}, []string{"sandtrail.events.*.5.>", "sandtrail.events.*.6.>", "sandtrail.events.*.99.>"}, ""},
		{collector.Filter{Classes: []int{2004}, MinSeverity: 6}, []string{"sandtrail.events.2004.6.>", "sandtrail.events.2004.99.>"}, ""},
		{collector.Filter{Hosts: []string{"A.b", "a_b"}}, []string{"sandtrail.events.*.*.a_b"}, ""},
		{collector.Filter{Classes: []int{1007}, Hosts: []string{"h"}}, []string{"sandtrail.events.1007.*.h"}, ""},
		{collector.Filter{Classes: []int{3002}}, nil, "class 3002 is not a sandtrail class"},
		{collector.Filter{MinSeverity: 7}, nil, "minimum severity 7"},
		{collector.Filter{Hosts: []string{""}}, nil, "empty host name"},
	} {
		got, err := tc.f.Subjects()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: got error %v, want %q", tc.f, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%v: got %v, %v; want %v", tc.f, got, err, tc.want)
		}
	}
}

// The collector records its life in the events stream, as one trail.
func TestLifecycleEvents(t *testing.T) {
	e := startEnv(t, 0)
	sink := &memSink{}
	c, stop := newCollector(t, e, collector.Config{
		Device:         &schema.Device{TypeID: schema.DeviceTypeIDServer, Hostname: "collector-host"},
		ProductVersion: "1.2.3",
		Sinks:          []collector.SinkConfig{{Name: "mem", Type: "memory", Sink: sink, Filter: collector.Filter{Classes: []int{2003}}}},
	})
	e.publish(t, sinktest.Events(3))
	waitFor(t, 10*time.Second, "the events", func() bool { return len(sink.events()) == 3 })
	stop()
	if !sink.closed.Load() {
		t.Error("Close did not close the sink")
	}
	var codes []string
	for _, m := range e.streamMsgs(t, bus.EventsStream) {
		if !strings.HasPrefix(m.Subject, "sandtrail.events.6002.") {
			continue
		}
		if err := schema.Validate(m.Data); err != nil {
			t.Fatalf("lifecycle event invalid: %v", err)
		}
		ev := mustEnvelope(t, m.Data)
		if ev.RunID != c.RunID() {
			t.Errorf("correlation_uid %s, want %s", ev.RunID, c.RunID())
		}
		if m.Subject != "sandtrail.events.6002.1.collector-host" {
			t.Errorf("subject %s", m.Subject)
		}
		codes = append(codes, eventCode(m.Data)+"#"+seqOf(m.Data))
	}
	if want := []string{"COLLECTOR_STARTED#1", "COLLECTOR_STOPPED#2"}; !slices.Equal(codes, want) {
		t.Fatalf("lifecycle events %v, want %v", codes, want)
	}
}

// New starts nothing; Run and Close keep their contract.
func TestRunAndCloseContract(t *testing.T) {
	e := startEnv(t, 0)
	before := goleak.IgnoreCurrent()
	sink := &memSink{}
	c, err := collector.New(collector.Config{JetStream: e.js, Sinks: []collector.SinkConfig{{Name: "m", Sink: sink}}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := goleak.Find(before); err != nil {
		t.Fatalf("New started goroutines: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	time.Sleep(100 * time.Millisecond)
	if err := c.Run(ctx); err == nil {
		t.Error("a second Run: want an error")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := c.Run(context.Background()); !errors.Is(err, collector.ErrClosed) {
		t.Fatalf("Run after Close: %v, want ErrClosed", err)
	}
	for _, bad := range []collector.Config{
		{},
		{JetStream: e.js},
		{JetStream: e.js, Sinks: []collector.SinkConfig{{Name: "a b", Sink: sink}}},
		{JetStream: e.js, Sinks: []collector.SinkConfig{{Name: "a", Sink: sink}, {Name: "a", Sink: sink}}},
		{JetStream: e.js, Sinks: []collector.SinkConfig{{Name: "a", Sink: sink, MaxDeliver: 1}}},
		{JetStream: e.js, Sinks: []collector.SinkConfig{{Name: "a", Sink: sink, MaxWait: 20 * time.Second}}},
		{JetStream: e.js, RawDataMax: 1 << 20, Sinks: []collector.SinkConfig{{Name: "a", Sink: sink}}},
	} {
		if _, err := collector.New(bad); err == nil {
			t.Errorf("New(%+v): want an error", bad)
		}
	}
}

// Close lets the batch being written finish and acknowledges it.
func TestCloseDrainsTheBatchInFlight(t *testing.T) {
	e := startEnv(t, 0)
	slow := &memSink{delay: 700 * time.Millisecond}
	c, err := collector.New(collector.Config{JetStream: e.js, Logger: testLogger(t),
		Sinks: []collector.SinkConfig{{Name: "slow", Sink: slow, MaxEvents: 10, MaxWait: 50 * time.Millisecond, Filter: only2003}}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background()) }()
	e.publish(t, sinktest.Events(10))
	waitFor(t, 10*time.Second, "a write to begin", func() bool { return slow.writes.Load() > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(slow.events()); n != 10 {
		t.Fatalf("the batch in flight: %d events written, want 10", n)
	}
	cons, err := e.js.Consumer(ctx, bus.EventsStream, collector.ConsumerPrefix+"slow")
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.AckFloor.Consumer < 10 {
		t.Fatalf("after Close: %d acknowledgements pending, ack floor %d; the drained batch was not acknowledged", info.NumAckPending, info.AckFloor.Consumer)
	}
}

// The collector waits for streams that do not exist yet, and recreates a
// consumer deleted under it.
func TestMissingStreamAndDeletedConsumer(t *testing.T) {
	e := startEnv(t, 0)
	ctx := context.Background()
	for _, s := range []string{bus.EventsStream, bus.DLQStream} {
		if err := e.js.DeleteStream(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	sink := &memSink{}
	c, _ := newCollector(t, e, collector.Config{
		MaxFailing: 100 * time.Millisecond,
		Sinks:      []collector.SinkConfig{{Name: "m", Sink: sink, Filter: only2003}},
	})
	waitFor(t, 10*time.Second, "the missing stream to show in Health", func() bool {
		err := c.Health()
		return err != nil && strings.Contains(err.Error(), "stream not found")
	})
	if err := bus.EnsureStreams(ctx, e.js, bus.Streams{}); err != nil {
		t.Fatal(err)
	}
	first := sinktest.Events(10)
	e.publish(t, first)
	waitFor(t, 20*time.Second, "events once the stream exists", func() bool { return len(sink.events()) == 10 })
	if err := c.Health(); err != nil {
		t.Errorf("Health: %v", err)
	}

	if err := e.js.DeleteConsumer(ctx, bus.EventsStream, collector.ConsumerPrefix+"m"); err != nil {
		t.Fatal(err)
	}
	more := sinktest.Events(10)
	e.publish(t, more)
	// The new consumer starts from the beginning of the stream: the first
	// ten come again (at least once), then the new ones.
	waitFor(t, 30*time.Second, "events after the consumer was deleted", func() bool {
		got := map[string]bool{}
		for _, ev := range sink.events() {
			got[ev.UID] = true
		}
		for _, ev := range more {
			if !got[ev.UID] {
				return false
			}
		}
		return true
	})
}

// TestStopEventExported: the collector publishes COLLECTOR_STOPPED while
// its sinks still run and lets them export up to it, so a sink that
// selects lifecycle events holds the collector's whole trail, final
// included, and verify finds it complete. A sink that does not select the
// class never sees it.
func TestStopEventExported(t *testing.T) {
	e := startEnv(t, 0)
	all, findings := &memSink{}, &memSink{}
	c, stop := newCollector(t, e, collector.Config{
		Device: &schema.Device{TypeID: schema.DeviceTypeIDServer, Hostname: "collector-host"},
		Sinks: []collector.SinkConfig{
			{Name: "all", Type: "memory", Sink: all},
			{Name: "findings", Type: "memory", Sink: findings, Filter: collector.Filter{Classes: []int{2003}}},
		},
	})
	e.publish(t, sinktest.Events(3))
	waitFor(t, 10*time.Second, "the events", func() bool { return len(findings.events()) == 3 })
	stop()

	v := chain.NewVerifier(chain.VerifierConfig{})
	var codes []string
	for i, ev := range all.events() {
		if ev.RunID != c.RunID() {
			continue
		}
		v.Add(ev.Data, chain.Origin{Source: "all", Index: int64(i + 1)})
		var body struct {
			Metadata struct {
				EventCode string `json:"event_code"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(ev.Data, &body); err != nil {
			t.Fatal(err)
		}
		codes = append(codes, body.Metadata.EventCode)
	}
	if want := []string{"COLLECTOR_STARTED", "COLLECTOR_STOPPED"}; !slices.Equal(codes, want) {
		t.Fatalf("the collector's events in the export: got %v, want %v", codes, want)
	}
	rep := v.Report()
	if len(rep.Runs) != 1 || rep.Runs[0].Status != chain.StatusComplete || !rep.Runs[0].Final {
		t.Errorf("verify of the collector's trail in the export: %+v", rep.Runs)
	}
	for _, ev := range findings.events() {
		if ev.ClassUID != 2003 {
			t.Errorf("the findings sink got class %d", ev.ClassUID)
		}
	}
}

// TestDefer: an event a sink defers (taken later by design, as the alert
// sink gathers a run) comes back after RetryAfter and is delivered; the
// sink is never marked failing and the deferral is counted as such, not as
// a retry.
func TestDefer(t *testing.T) {
	e := startEnv(t, 0)
	var mu sync.Mutex
	seen := map[string]bool{}
	sink := &memSink{fail: func(ev collector.Event) collector.Outcome {
		mu.Lock()
		defer mu.Unlock()
		if !seen[ev.UID] {
			seen[ev.UID] = true
			return collector.Outcome{Status: collector.Defer, RetryAfter: 200 * time.Millisecond, Reason: "gathering"}
		}
		return collector.Outcome{}
	}}
	c, _ := newCollector(t, e, collector.Config{
		MaxFailing: time.Nanosecond, // any failure at all would show
		Sinks:      []collector.SinkConfig{{Name: "m", Sink: sink, Filter: only2003}},
	})
	evs := sinktest.Events(5)
	e.publish(t, evs)
	waitFor(t, 10*time.Second, "the deferred events", func() bool { return len(sink.events()) == len(evs) })
	for _, s := range c.SinkStates() {
		if !s.FailingSince.IsZero() {
			t.Errorf("sink state after deferrals: %s", s)
		}
	}
	reg := c.Registry()
	if n := metric(t, reg, "sandtrail_collector_events_deferred_total", "sink", "m"); n != float64(len(evs)) {
		t.Errorf("events_deferred_total = %v, want %d", n, len(evs))
	}
	if n := metric(t, reg, "sandtrail_collector_events_retried_total", "sink", "m"); n != 0 {
		t.Errorf("events_retried_total = %v, want 0", n)
	}
}
