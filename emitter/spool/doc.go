// Package spool is the emitter's durable local spool: encoded events are
// appended to files on local disk, and fsynced, before the sandbox they
// describe may start; a publisher later reads them (Next), publishes them
// to JetStream and acknowledges them (Ack) after the server's PubAck.
//
// # Guarantees
//
//   - Durability: when Append returns nil its records are on stable
//     storage (fdatasync of the segment; the segment's name was made
//     durable with an fsync of the directory when it was created).
//   - At-least-once: a record is delivered until it is acknowledged, by
//     this process or, after it exits or dies, by the next process that
//     opens the directory. A crash re-delivers only records whose Ack had
//     not returned, or that were acknowledged out of order; Position.String
//     is a stable message ID with which JetStream drops such duplicates.
//   - Crash safety: after kill -9 (or power loss) at any instant, a torn
//     last record, or a record whose checksum does not match, is reported
//     (in the Recovery returned by Open and through the logger, with file
//     and offset) and skipped; the records before and after it, and in
//     later segments, are delivered.
//   - Bounded: the segment files of the directory never grow beyond
//     Config.MaxBytes because of an Append that observed the limit. When
//     full, Append returns an error wrapping ErrFull (RefuseNew, the
//     default) or waits for acknowledgements to free space (Block). Nothing
//     already spooled is ever dropped.
//
// # On disk
//
// The directory (mode 0700, owned by the effective user) holds segment
// files (mode 0600) named
//
//	seg-<creation time, 20-digit Unix nanoseconds>-<pid>-<8 hex random>.log
//
// so that names are unique across processes and sort by creation time. A
// segment starts with a 128-byte header (magic "STSPOOL1", version, pid,
// creation time, a CRC-32C, and two ack slots holding the acknowledged
// offset, written alternately so a torn write leaves the other intact).
// Records follow back to back, each framed as
//
//	magic 0xFE 'S' 'R' 'C' | length u32 | CRC-32C(payload) u32 | CRC-32C(previous 12 bytes) u32 | payload
//
// (little endian). Records are only ever appended; a segment is deleted
// once it is sealed (no more appends) and all its records are
// acknowledged.
//
// A damaged record is detected by its header or payload checksum. The
// reader then resynchronises: it scans forward for the next offset where
// the magic, the header checksum and the payload checksum all hold, and
// resumes there. The skipped range is a "torn tail" if it runs to the end
// of the file (an interrupted append), a "corrupt record" otherwise. A
// false resynchronisation point would need a forged pair of CRC-32Cs;
// 0xFE never occurs in UTF-8, so JSON payloads cannot even contain the
// magic.
//
// # Processes sharing a directory
//
// Several processes may use one directory at the same time. Every segment
// is owned by exactly one live Spool, the one holding an exclusive flock on
// it; only the owner appends to it, reads it, or acknowledges in it. A
// Spool appends only to segments it created: it builds each one under a
// temporary name, locks it, then renames it, so no other process ever sees
// a live writer's segment unlocked. Segments whose lock can be taken
// belong to a process that is gone (or closed its Spool); Open, and an idle
// Next every Config.ClaimInterval, claim them: lock, check the file is
// still linked (its owner may have deleted it after we opened it), validate
// every record after the acknowledged offset, and deliver them. Each
// record is therefore handed out by at most one process at a time, and a
// dead process's records are delivered by whichever process next runs.
// flock locks belong to the open file description, so one process opening
// and closing another's segment never releases the owner's lock; a lock
// dies with its process, however it ends.
//
// MaxBytes counts every segment file in the directory: this Spool's exactly,
// other processes' as measured by a directory scan at most ClaimInterval
// old (and again before refusing). Two processes appending at the same
// instant may together overshoot by one batch each.
//
// # Concurrency within a process
//
// All methods are safe for concurrent use, and a Spool starts no
// goroutines. Appends use leader/follower group commit: each Append frames
// its records, joins the open group, and either waits for that group's
// result or, if no commit is in progress, becomes the leader that writes
// every queued batch and issues one fdatasync for all of them. Next calls
// are serialised; Ack calls are serialised and do their I/O without
// blocking Append.
//
// The package needs Linux (flock, fdatasync); on other systems Open
// returns an error.
package spool
