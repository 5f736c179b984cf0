package emitter

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/google/uuid"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/chain"
	"github.com/sandtrail/sandtrail/schema"
)

// Profiles every sandtrail event declares; events that carry container or
// PID-namespace data add "container" themselves.
var baseProfiles = []string{"host", "security_control", "linux/linux_users"}

// Trail is the sequence of events of one run (a sandbox launch, a daemon's
// life): they share metadata.correlation_uid, are numbered 1, 2, 3... in
// metadata.sequence without gaps, and are chained (package chain): each
// carries the hash of the previous one and its own in
// unmapped.sandtrail_integrity, and the run's last event, emitted with End,
// states the count and is signed when the Emitter has a Signer. Emit and
// End on one Trail are serialised.
type Trail struct {
	e      *Emitter
	id     string
	mu     sync.Mutex
	seq    int
	sealer *chain.Sealer
	err    error // the sealer could not be made (an invalid run id)
}

// Trail returns the trail of run id. Two Trail values for one id would
// number and chain independently: keep one per run.
func (e *Emitter) Trail(id string) *Trail {
	s, err := chain.NewSealer(id, e.cfg.Signer)
	return &Trail{e: e, id: id, sealer: s, err: err}
}

// ID returns the run id (metadata.correlation_uid).
func (t *Trail) ID() string { return t.id }

// Seq returns the sequence number of the last event emitted.
func (t *Trail) Seq() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seq
}

// Emit stamps, chains, validates and durably spools the events, in order,
// with one fsync for the batch. It returns once they are on disk;
// publishing happens in Run. If any event is invalid or the spool refuses
// the batch, nothing of it is spooled, no sequence number is used, and the
// error says which event and why.
//
// Emit sets on each event: metadata (version, uid unless set, product,
// correlation_uid, sequence, log_name, profiles, extensions), time unless
// set, device unless set, and the integrity link. It modifies the events
// it is given.
func (t *Trail) Emit(ctx context.Context, evs ...schema.Event) error {
	return t.emit(ctx, false, evs)
}

// End emits the run's last events, like Emit; the last of them closes the
// trail: its link says final and the run's count, and is signed. Nothing
// can be emitted on the Trail afterwards.
func (t *Trail) End(ctx context.Context, evs ...schema.Event) error {
	if len(evs) == 0 {
		return errors.New("emitter: End needs the run's last event")
	}
	return t.emit(ctx, true, evs)
}

func (t *Trail) emit(ctx context.Context, end bool, evs []schema.Event) error {
	e := t.e
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return fmt.Errorf("emit: %w", t.err)
	}
	state := t.sealer.State()
	records := make([][]byte, 0, len(evs))
	for i, ev := range evs {
		rec, err := e.stamp(ev, t.id, t.seq+1+i, t.sealer, end && i == len(evs)-1)
		if err != nil {
			t.sealer.Restore(state)
			e.count(func(s *Stats) { s.Rejected += uint64(len(evs)) })
			return fmt.Errorf("emit event %d of %d (%s): %w", i+1, len(evs), ev.ClassName(), err)
		}
		records = append(records, rec)
	}
	if err := e.spool.Append(ctx, records...); err != nil {
		t.sealer.Restore(state)
		e.count(func(s *Stats) { s.Rejected += uint64(len(evs)) })
		return fmt.Errorf("emit: %w", err)
	}
	t.seq += len(evs)
	e.count(func(s *Stats) { s.Emitted += uint64(len(evs)) })
	return nil
}

func (e *Emitter) count(f func(*Stats)) {
	e.mu.Lock()
	f(&e.stats)
	e.mu.Unlock()
}

// stamp fills the envelope and returns the spool record: the subject, the
// message id and the validated encoding.
func (e *Emitter) stamp(ev schema.Event, run string, seq int, sealer *chain.Sealer, final bool) ([]byte, error) {
	b := ev.EventBase()
	now := e.cfg.Now()
	if b.Time == 0 {
		b.Time = now.UnixMilli()
	}
	md := b.Metadata
	if md == nil {
		md = &schema.Metadata{}
		b.Metadata = md
	}
	md.Version = schema.Version
	if md.UID == "" {
		u, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("new uid: %w", err)
		}
		md.UID = u.String()
	}
	md.Product = &schema.Product{Name: "sandtrail", VendorName: "sandtrail", Version: e.cfg.ProductVersion}
	md.CorrelationUID = run
	md.Sequence = schema.Ptr(seq)
	for _, p := range baseProfiles {
		if !slices.Contains(md.Profiles, p) {
			md.Profiles = append(md.Profiles, p)
		}
	}
	if !slices.ContainsFunc(md.Extensions, func(x schema.Extension) bool { return x.Name == "linux" }) {
		md.Extensions = append(md.Extensions, schema.Extension{Name: "linux", UID: "1", Version: schema.Version})
	}
	host := e.cfg.Host.Hostname
	if dev := setDevice(ev, e.cfg.Host); dev != nil && dev.Hostname != "" {
		host = dev.Hostname
	}
	subject := bus.EventSubject(ev.ClassUID(), int(b.SeverityID), host)
	md.LogName = subject
	// The record: a small header for the publisher, then the event.
	rec := make([]byte, 0, 2048)
	rec = append(rec, recordVersion)
	rec = binary.AppendUvarint(rec, uint64(len(subject)))
	rec = append(rec, subject...)
	rec = binary.AppendUvarint(rec, uint64(len(md.UID)))
	rec = append(rec, md.UID...)
	encoded, err := ev.AppendJSON(make([]byte, 0, 2048))
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	start := len(rec)
	if rec, err = sealer.AppendSeal(rec, encoded, final); err != nil {
		return nil, fmt.Errorf("chain: %w", err)
	}
	if err := e.cfg.Validator.Validate(rec[start:]); err != nil {
		return nil, err
	}
	return rec, nil
}

// setDevice fills the event's device from h unless the caller set one, and
// returns it.
func setDevice(ev schema.Event, h Host) *schema.Device {
	p := devicePtr(ev)
	if p == nil {
		return nil
	}
	if *p == nil {
		*p = h.device()
	}
	return *p
}

// devicePtr returns the address of the event's device attribute. Every
// sandtrail class has one, with a requirement that differs by category,
// which is why it is not in schema.Base.
func devicePtr(ev schema.Event) **schema.Device {
	switch x := ev.(type) {
	case *schema.ComplianceFinding:
		return &x.Device
	case *schema.DetectionFinding:
		return &x.Device
	case *schema.DeviceConfigStateChange:
		return &x.Device
	case *schema.ProcessActivity:
		return &x.Device
	case *schema.ApplicationLifecycle:
		return &x.Device
	case *schema.ApplicationError:
		return &x.Device
	case *schema.KernelActivity:
		return &x.Device
	case *schema.FileActivity:
		return &x.Device
	case *schema.NetworkActivity:
		return &x.Device
	}
	return nil
}

const recordVersion = 1

var errBadRecord = errors.New("emitter: malformed spool record")

// parseRecord splits a spool record into subject, message id and event.
func parseRecord(rec []byte) (subject, id string, event []byte, err error) {
	if len(rec) == 0 || rec[0] != recordVersion {
		return "", "", nil, errBadRecord
	}
	rest := rec[1:]
	var fields [2]string
	for i := range fields {
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			return "", "", nil, errBadRecord
		}
		fields[i] = string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
	}
	return fields[0], fields[1], rest, nil
}
