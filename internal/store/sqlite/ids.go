package sqlite

// Finding a row by its id without an index on id (migration 00006). Ids the
// gateway makes (server.newID) start with "req_" and 14 hex digits of the
// time they were made, and a row's time_us (when the proxy started on it) is
// a little later. So for most rows the id bounds where the row sits in the
// primary key (time_us, id): GetLog scans at most idWindowUS of it. The
// rows it cannot find that way (client-sent X-Request-Ids, a row recorded
// long after its id was made, a clock step) get an entry in request_ids.
// An id index cost ~0.8 µs of CPU per inserted row (docs/perf.md); an entry
// costs about the same, but only for those rows.

// idWindowUS is how long after its id's time a row may start and still be
// found by the id alone. It is part of the stored format: changing it needs
// a migration that adds the request_ids entries the new value requires.
// Migration 00006 has it written out as 100000 in its SQL. 100 ms holds
// every /v1 request (the proxy starts on it before reading its body) and
// scans ~500 rows at 5000 rows/s; a chat turn that waited for its
// conversation's lock gets an entry.
const idWindowUS = 100_000

// maxIDTime bounds the times 14 hex digits can hold.
const maxIDTime = 1 << 56

// idTime returns the time in an id of the gateway's form: "req_" and 14
// lowercase hex digits (what follows does not matter).
func idTime(id string) (int64, bool) {
	if len(id) < 18 || id[:4] != "req_" {
		return 0, false
	}
	var t int64
	for i := 4; i < 18; i++ {
		c := id[i]
		switch {
		case '0' <= c && c <= '9':
			t = t<<4 | int64(c-'0')
		case 'a' <= c && c <= 'f':
			t = t<<4 | int64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return t, true
}

// idFinds reports whether GetLog finds the row (id, us) by its id alone,
// without a request_ids entry. It must agree with idFindsSQL, which
// migration 00006 uses to fill request_ids (TestIDFindsMatchesSQL).
func idFinds(id string, us int64) bool {
	t, ok := idTime(id)
	return ok && us >= 0 && us < maxIDTime && t <= us && us-t < idWindowUS
}

// idFindsSQL is idFinds as an SQL expression over a requests row: the
// fixed-width lowercase hex compares as the number it spells.
const idFindsSQL = `(length(id) >= 18 AND substr(id, 1, 4) = 'req_'
	AND substr(id, 5, 14) NOT GLOB '*[^0-9a-f]*'
	AND time_us >= 0 AND time_us < 72057594037927936
	AND substr(id, 5, 14) <= printf('%014x', time_us)
	AND (time_us < 100000 OR printf('%014x', time_us - 100000) < substr(id, 5, 14)))`
