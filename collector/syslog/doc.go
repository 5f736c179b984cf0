// Package syslog is the collector's sink for syslog receivers: every event
// becomes one RFC 5424 message sent over TLS (RFC 5425, the default) or
// plain TCP, framed by octet counting (RFC 6587 section 3.4.1, the only
// framing RFC 5425 allows, and the one that carries multi-line or
// non-ASCII JSON intact).
//
// # The message
//
// Every event becomes (one line here; the JSON may span lines):
//
//	<PRI>1 TIMESTAMP HOSTNAME sandtrail - MSGID [sandtrail@32473 class_uid="2003" severity_id="4" run="..." event_uid="..."] {"class_uid":2003,...}
//
// PRI is facility*8 + severity. The facility is configurable (default
// local4, 20). The syslog severity is mapped from the OCSF severity_id
// ([Severity]):
//
//	OCSF severity_id        syslog severity
//	0 Unknown               5 notice
//	1 Informational         6 informational
//	2 Low                   5 notice
//	3 Medium                4 warning
//	4 High                  3 error
//	5 Critical              2 critical
//	6 Fatal                 1 alert
//	99 Other, anything else 5 notice
//
// 0 emergency ("system is unusable", broadcast to every terminal by some
// daemons) is never used: no sandbox decision makes a host unusable.
//
// The other fields:
//   - TIMESTAMP is the OCSF time in UTC with milliseconds
//     (2025-11-27T16:13:20.039Z); the NILVALUE "-" when the event has none.
//   - HOSTNAME is the event's device.hostname, else Config.Hostname (default:
//     the collector's host name). Characters RFC 5424 forbids there (space,
//     non-ASCII) become "_".
//   - APP-NAME is "sandtrail" (configurable); PROCID is the NILVALUE: the
//     collector relays events of other processes.
//   - MSGID is the class name as a token: "compliance_finding",
//     "detection_finding", "device_config_state_change", "process_activity".
//   - STRUCTURED-DATA is one element whose SD-ID is sandtrail@<PEN>. The
//     Private Enterprise Number defaults to 32473, which RFC 5612 reserves
//     for documentation and examples: an organisation with its own IANA PEN
//     sets Config.EnterpriseNumber. Its parameters are class_uid,
//     severity_id, run (metadata.correlation_uid, left out when empty) and
//     event_uid (metadata.uid, the idempotency key: a receiver that wants
//     exactly-once deduplicates on it). '"', '\' and ']' in values are
//     escaped with a backslash as RFC 5424 section 6.3.3 requires.
//   - MSG is the event's JSON exactly as published, without the UTF-8 BOM
//     of RFC 5424's MSG-UTF8: a BOM would end up in front of the JSON and
//     make JSON parsers downstream reject it. The JSON is UTF-8 anyway.
//
// A message longer than Config.MaxMessageSize (default 64 KiB) is never
// truncated: its event is rejected to the dead-letter stream with the
// sizes in the reason. RFC 5425 receivers need only accept 2 KiB and
// should accept 8 KiB. rsyslog's default maxMessageSize is 8 KiB and it
// truncates longer messages: raise it on the receiver to at least
// MaxMessageSize (global(maxMessageSize="64k"); imtcp's maxFrameSize, 200000
// bytes by default, bounds octet-counted frames too).
//
// # What Delivered means
//
// Syslog over TCP has no application-level acknowledgement. Write reports a
// batch Delivered when the kernel accepted every byte of it, on a
// connection the sink had just found open: the syslog receiver has not
// necessarily processed it. Bytes still in a socket buffer (ours, the
// network's or the receiver's) when the receiver or its host dies are lost
// without the sink knowing. The sink narrows that window and never widens
// it:
//
//   - before each batch it checks that the receiver has not closed the
//     connection (a receiver restarted between batches is noticed, and the
//     batch goes to a new connection instead of into a dead socket);
//   - after a TLS handshake it waits Config.AcceptWait (default 250ms) for
//     the server to refuse the connection, because a TLS 1.3 server judges
//     the client certificate, and rsyslog checks its permitted peers, only
//     after the client's handshake has completed;
//   - after any error on a connection it closes it and marks the whole
//     batch Retry, so the collector resends every event that was not
//     confirmed: delivery is at-least-once, with possible duplicates that
//     carry the same event_uid;
//   - it reconnects with exponential backoff (Config.Backoff), reported to
//     the collector as the Retry's RetryAfter.
//
// A write cut short (WriteTimeout, a cancelled context, a reset) can leave
// a partial frame on the closed connection; an octet-counting receiver
// drops it (rsyslog does), and the whole batch is sent again. [Sink.Stats]
// and the metrics of [Sink.Collectors] count connections and resent
// batches.
//
// Reliable delivery with application acknowledgements needs RELP
// (rsyslog's omrelp/imrelp), which this package does not speak.
package syslog
