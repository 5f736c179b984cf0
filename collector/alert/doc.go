// Package alert is the collector's sink for operator alerts: it tells a
// human that a sandbox ran degraded or was refused, once per run, through a
// JSON webhook or an Alertmanager (API v2). It is not an export: every event
// still reaches the SIEM through the other sinks; this sink only decides
// whether someone must be paged about it.
//
// # Which events alert
//
//   - any event with is_alert true (the Detection Findings of degraded or
//     failed controls, runtime denials);
//   - a Compliance Finding whose compliance.status_id is 2 Warning (a control
//     degraded) or 3 Fail (a required control failed);
//   - a run's Device Config State Change (its posture) whose
//     security_level_id is 2 At Risk or 3 Compromised (the host probe's,
//     which belongs to no run, does not alert);
//   - a Process Activity Launch refused (status_id 2 Failure, event_code
//     LAUNCH_REFUSED).
//
// Every other event is acknowledged (Delivered) at once: the sink has
// nothing to do with it.
//
// # One alert per run
//
// A degraded launch produces a dozen events (a Compliance Finding per
// control, a Detection Finding per degradation, the posture). The sink
// gathers the alerting events of a run (metadata.correlation_uid) from the
// first one it sees until the run's posture or launch event arrives, or
// for at most Config.Window (default 2s), and then sends one alert that
// lists every degraded or failed control with its errno, its reason and its
// remediation, the posture and risk score, and whether the launch was
// refused. An alerting event without a run makes an alert of its own at
// once.
//
// The collector's Write contract is synchronous, so gathering across
// batches works by holding: an alerting event of a run still being
// gathered is returned Retry, with RetryAfter the rest of the window, and
// is not acknowledged. When the run's alert has been sent, the held events
// that come back are acknowledged as covered. A collector that stops while
// it gathers loses nothing: the held events are redelivered to the next one.
// Held events count in the collector's retried-events metric; a batch made
// only of held events makes the collector wait its RetryAfter and write it
// again, and by then the window has passed and the alert goes out.
//
// After its alert, a run is remembered for 10 minutes: its events coming
// back are acknowledged, and later alerting events of the run (a runtime
// denial, or the rest of a run whose events were split across batches)
// produce an update (Alert.Update, same Key, the whole run described) only
// if they add a control, a finding or a change of verdict; otherwise they
// are acknowledged silently.
//
// # Rate limit
//
// Alerts pass a token bucket: Config.Burst alerts at once (default 10), then
// Config.RatePerMinute per minute (default 10). An alert that finds the
// bucket empty is suppressed: its events are reported Delivered, and the
// drop is counted, in [Sink.Suppressed], in the
// sandtrail_sink_alerts_suppressed_total metric ([Sink.Collectors]), and in
// the next alert that is sent (the webhook's suppressed_since_last, the
// Alertmanager annotation suppressed_alerts). Suppression is a deliberate,
// counted drop of the notification, never of the events, which the other
// sinks still export. A POST that fails gives its tokens back.
//
// # Delivery
//
// An alert's events are Delivered only when its POST got a 2xx answer. A
// network error, 429 or 5xx (with the receiver's Retry-After) is Retry; so
// is any other status, because an event that is valid can never be
// rejected for good by an alert receiver: after the consumer's MaxDeliver
// attempts the collector moves it to the dead-letter stream with the
// receiver's answer as the reason. Redelivered events can make the same
// alert twice; Alert.Key (the run id) lets a receiver deduplicate, and
// Alertmanager merges alerts with equal labels by itself.
//
// # Webhook payload
//
// In webhook mode each POST carries a [Payload]:
//
//	{
//	  "version": "1",
//	  "alerts": [{
//	    "key": "019ac617-3100-7000-80a1-3c9efa1d7f42",
//	    "alertname": "SandboxDegraded",
//	    "status": "firing",
//	    "run": "019ac617-3100-7000-80a1-3c9efa1d7f42",
//	    "host": "build-07.ci.example.net",
//	    "policy": "build-runner",
//	    "severity": "high", "severity_id": 4,
//	    "summary": "sandbox degraded on build-07.ci.example.net (policy build-runner): degraded: capability_bounding_set (EPERM)",
//	    "description": "run ... on ..., policy build-runner:\n- capability_bounding_set: Warning (EPERM): ...",
//	    "remediation": "capability_bounding_set: sandtrail needs CAP_SETPCAP ...",
//	    "controls": [{"control": "capability_bounding_set", "status": "Warning", "status_code": "EPERM",
//	                  "reason": "...", "remediation": "..."}],
//	    "findings": [{"event_uid": "...", "class_uid": 2004, "event_code": "CAPBSET_DEGRADED",
//	                  "severity_id": 4, "title": "..."}],
//	    "posture": {"security_level": "At Risk", "risk_score": 35, "details": "..."},
//	    "launch_refused": false,
//	    "update": false,
//	    "starts_at": "2025-11-27T16:13:20.039Z",
//	    "url": "https://grafana.example.net/...?run=...",
//	    "labels": {"cluster": "ci"}
//	  }],
//	  "suppressed_since_last": 0,
//	  "suppressed_total": 0
//	}
//
// # Alertmanager
//
// In alertmanager mode each POST to <url>/api/v2/alerts carries a JSON array
// of postable alerts: labels alertname, run, host, policy and severity (the
// lower-case OCSF caption: medium, high, critical...) plus Config.Labels;
// annotations summary, description, remediation, controls, event_uids and,
// after suppression, suppressed_alerts; startsAt the first alerting event's
// time; generatorURL when Config.GeneratorURL is set. endsAt is left out,
// so Alertmanager resolves the alert after its resolve_timeout.
package alert
