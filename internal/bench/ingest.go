/*
Copyright 2026 The auditops Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package bench

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/auditops/auditops/internal/apiserver/ingesthttp"
	"github.com/auditops/auditops/internal/ingest"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/payload"
	"github.com/auditops/auditops/internal/store/sqlite"
)

const (
	// webhookBatch is kube-apiserver's audit webhook default batch size.
	webhookBatch   = 400
	webhookSenders = 4
	floorChunk     = 5000
)

// lines calls fn with each line of the file (the slice is reused).
func lines(path string, fn func(line []byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		if err := fn(sc.Bytes()); err != nil {
			return err
		}
	}
	return sc.Err()
}

// webhookIngest serves the ingest handler over TLS on loopback and posts the
// log to it as EventLists of webhookBatch events from webhookSenders
// concurrent senders, as kube-apiserver's webhook backend does. It returns
// the events stored and the time from the first request to the last answer.
func webhookIngest(ctx context.Context, st store.Store, log string) (int, time.Duration, error) {
	h := ingesthttp.NewHandler(ingest.NewService(st, ingest.Options{StoreTimeout: time.Minute}), ingesthttp.Options{})
	srv := httptest.NewUnstartedServer(h)
	srv.StartTLS()
	defer srv.Close()
	client := srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = webhookSenders * 2

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bodies := make(chan []byte, webhookSenders*2)
	var readErr error
	go func() {
		defer close(bodies)
		var b []byte
		n := 0
		head := `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[`
		send := func() bool {
			b = append(b, "]}"...)
			select {
			case bodies <- b:
			case <-ctx.Done():
				return false
			}
			b, n = nil, 0
			return true
		}
		readErr = lines(log, func(line []byte) error {
			if n == 0 {
				b = append(make([]byte, 0, 1<<20), head...)
			} else {
				b = append(b, ',')
			}
			b = append(b, line...)
			n++
			if n == webhookBatch && !send() {
				return ctx.Err()
			}
			return nil
		})
		if n > 0 {
			send()
		}
	}()

	var mu sync.Mutex
	stored := 0
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range webhookSenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range bodies {
				res, err := post(ctx, client, srv.URL+ingest.KubeAuditPath, body)
				mu.Lock()
				stored += res.Stored
				if err != nil && firstErr == nil {
					firstErr = err
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	if firstErr != nil {
		return stored, d, firstErr
	}
	return stored, d, readErr
}

// post sends one batch, retrying on 503 as kube-apiserver would.
func post(ctx context.Context, c *http.Client, u string, body []byte) (ingest.Result, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return ingest.Result{}, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return ingest.Result{}, err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && attempt < 5 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return ingest.Result{}, fmt.Errorf("POST %s: %s: %s", ingest.KubeAuditPath, resp.Status, b)
		}
		var res ingest.Result
		if err := json.Unmarshal(b, &res); err != nil {
			return res, err
		}
		return res, nil
	}
}

// bulkImport runs the import of manager import.
func bulkImport(ctx context.Context, st store.Store, log string) (int, time.Duration, error) {
	stats, err := ingest.Import(ctx, st, ingest.FormatKubeAudit, []string{log}, ingest.ImportOptions{})
	return int(stats.Stored), stats.Elapsed, err
}

// floorInsert fills t's schema (made by the store's own migrations) the
// plainest fast way through the same driver: SQLite prepared INSERTs in
// transactions of floorChunk; PostgreSQL COPY of floorChunk rows. Events are
// decoded and mapped before each chunk; only the inserts are timed.
func floorInsert(ctx context.Context, t *target, log string) (int, time.Duration, error) {
	st, err := t.open(ctx) // migrations: the same schema and indexes
	if err != nil {
		return 0, 0, err
	}
	st.Close()
	pc, err := payload.NewCodec(ctx, &payload.MemDicts{}, nil)
	if err != nil {
		return 0, 0, err
	}
	defer pc.Close()

	var insert func(chunk []store.Event) error
	var closeFn func()
	switch t.kind {
	case "sqlite":
		q := url.Values{}
		q.Set("_busy_timeout", "10000")
		q.Add("_pragma", "page_size(8192)")
		q.Add("_pragma", "cache_size(-32768)")
		q.Add("_pragma", "temp_store(memory)")
		q.Set("_journal_mode", "WAL")
		q.Set("_synchronous", "FULL")
		q.Add("_pragma", sqlite.WriterCheckpointPragma)
		db, err := sql.Open("sqlite", t.dsn+"?"+q.Encode())
		if err != nil {
			return 0, 0, err
		}
		db.SetMaxOpenConns(1)
		closeFn = func() { db.Close() }
		stmt, err := db.PrepareContext(ctx, "INSERT INTO events (seq, "+insertColumns+") VALUES (?"+
			strings.Repeat(", ?", strings.Count(insertColumns, ",")+1)+")")
		if err != nil {
			db.Close()
			return 0, 0, err
		}
		// Each event's entry in ids (SQLite's migration 12), one insert
		// per event into the one large table: the plain way, without the
		// store's small table in front (the store's design, on the clock).
		idStmt, err := db.PrepareContext(ctx, "INSERT INTO ids (namespace, id_hash, ts, seq) VALUES (?, ?, ?, ?)")
		if err != nil {
			db.Close()
			return 0, 0, err
		}
		seq := int64(1)
		args := make([]any, 0, 24)
		insert = func(chunk []store.Event) error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			s, ids := tx.StmtContext(ctx, stmt), tx.StmtContext(ctx, idStmt)
			for i := range chunk {
				args = append(append(args[:0], seq), insertValues(pc, &chunk[i])...)
				if _, err := s.ExecContext(ctx, args...); err != nil {
					tx.Rollback()
					return err
				}
				// args: seq, namespace, ts, ..., id_hash, content_hash.
				if _, err := ids.ExecContext(ctx, args[1], args[2], args[len(args)-2], seq); err != nil {
					tx.Rollback()
					return err
				}
				seq++
			}
			return tx.Commit()
		}
	default:
		conn, err := pgx.Connect(ctx, t.dsn)
		if err != nil {
			return 0, 0, err
		}
		closeFn = func() { conn.Close(context.Background()) }
		cols := strings.Split(strings.ReplaceAll(insertColumns, " ", ""), ",")
		rows := make([][]any, 0, floorChunk)
		insert = func(chunk []store.Event) error {
			rows = rows[:0]
			for i := range chunk {
				rows = append(rows, insertValues(pc, &chunk[i]))
			}
			_, err := conn.CopyFrom(ctx, pgx.Identifier{"events"}, cols, pgx.CopyFromRows(rows))
			return err
		}
	}
	defer closeFn()

	var total time.Duration
	n := 0
	chunk := make([]store.Event, 0, floorChunk)
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		start := time.Now()
		if err := insert(chunk); err != nil {
			return err
		}
		total += time.Since(start)
		n += len(chunk)
		chunk = chunk[:0]
		return nil
	}
	var ev auditv1.Event
	err = lines(log, func(line []byte) error {
		ev = auditv1.Event{}
		if err := json.Unmarshal(line, &ev); err != nil {
			return err
		}
		e, ok, err := ingest.MapKubeAudit(&ev)
		if err != nil || !ok {
			return fmt.Errorf("mapping an event: ok=%v %v", ok, err)
		}
		if e, err = store.NormalizeEvent(e); err != nil {
			return err
		}
		chunk = append(chunk, e)
		if len(chunk) == floorChunk {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return n, total, err
}

// insertColumns and insertValues are the store's columns, written out again
// by hand, as a floor is; the keys (id hash, content hash) and the encoded
// payload are work any insert must do, so the floor does them too.
const insertColumns = "namespace, ts, id, user_name, api, status, category, method, status_code, " +
	"entity_kind_v1, entity_id_v1, device_id, certificate_serial_number_v1, issuer_dn_v1, details_v1, archived_v1, " +
	"message_v1, error_v1, payload, id_hash, content_hash"

// insertValues leaves the _v1 columns empty: the payload holds those
// fields (payload.ValuesOf), as the store's inserts do.
func insertValues(pc *payload.Codec, e *store.Event) []any {
	var p any
	if b := pc.Encode(payload.ValuesOf(e)); b != nil {
		p = b
	}
	return []any{
		e.Namespace, e.Time.UnixNano(), e.ID, e.User, e.API, e.Status, e.Category, e.Method,
		int64(e.StatusCode), "", "", e.DeviceID, "", "", "", false, "", nil, p,
		store.IDHash(e.ID), contentHash(e),
	}
}

func contentHash(e *store.Event) []byte {
	h := store.ContentHash(e)
	return h[:]
}
