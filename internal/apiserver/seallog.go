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

package apiserver

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/auditops/auditops/internal/report"
	"github.com/auditops/auditops/internal/seal"
)

// Limits of the log endpoints (spec/API.md 6).
const (
	checkpointsDefaultLimit = 100
	checkpointsMaxLimit     = 1000
	leavesMax               = 10000
)

// notFound is a 404 with a message saying what is not there.
type notFound struct{ msg string }

func (e *notFound) Error() string { return e.msg }

// logReader is the store's logs for a log endpoint, or a 404 naming why
// there are none.
func (s *Server) logReader() (seal.LogReader, error) {
	if s.logs == nil {
		return nil, &notFound{msg: "this audit store keeps no tamper-evident log (the manager runs with --seal=false or its store has none)"}
	}
	return s.logs, nil
}

// logRequest reads and checks what every log endpoint needs: the query, the
// namespace, and list on resource there.
func (s *Server) logRequest(r *http.Request, resource string) (url.Values, string, seal.LogReader, error) {
	q, err := readQuery(r)
	if err != nil {
		return nil, "", nil, err
	}
	ns := r.PathValue("ns")
	if err := textParam("namespace", ns); err != nil {
		return nil, "", nil, err
	}
	if err := s.authorize(r.Context(), "list", resource, ns, ""); err != nil {
		return nil, "", nil, err
	}
	logs, err := s.logReader()
	return q, ns, logs, err
}

// int64Param parses a required (def < 0) or optional non-negative integer
// parameter within [min, max].
func int64Param(q url.Values, name string, def, min, max int64) (int64, error) {
	v := q.Get(name)
	if v == "" {
		if def < 0 {
			return 0, badParam(fmt.Sprintf("%s is required: an integer between %d and %d", name, min, max))
		}
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < min || n > max || strconv.FormatInt(n, 10) != v {
		return 0, badParam(fmt.Sprintf("%s must be an integer between %d and %d, got %q", name, min, max, v))
	}
	return n, nil
}

// checkpointItem is one item of the checkpoints list.
type checkpointItem struct {
	Origin   string `json:"origin"`
	Size     int64  `json:"size"`
	RootHash string `json:"rootHash"`
	Time     string `json:"time"`
	Note     string `json:"note"`
}

// readCheckpoints reads one page of ns's checkpoints, newest first, and the
// continue value of the next ("" at the end). A continue value is the size
// below which the next page starts; it moves only within ns's log, which
// the caller may list, so it is not signed.
func (s *Server) readCheckpoints(r *http.Request, q url.Values, ns string, logs seal.LogReader) ([]checkpointItem, string, error) {
	// 0 is Kubernetes' "no limit"; we serve the default page then.
	limit, err := int64Param(q, "limit", checkpointsDefaultLimit, 0, checkpointsMaxLimit)
	if err != nil {
		return nil, "", err
	}
	if limit == 0 {
		limit = checkpointsDefaultLimit
	}
	before, err := int64Param(q, "continue", 0, 1, 1<<62)
	if err != nil {
		return nil, "", badParam("continue is invalid: it was tampered with or belongs to another query; start again without it")
	}
	ctx, cancel := s.storeCtx(r)
	defer cancel()
	// One more than the page tells whether another page follows.
	cps, err := logs.Checkpoints(ctx, ns, before, int(limit)+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(cps) > int(limit) {
		cps = cps[:limit]
		next = strconv.FormatInt(cps[len(cps)-1].Size, 10)
	}
	items := make([]checkpointItem, 0, len(cps))
	for _, c := range cps {
		cp, err := seal.Parse(noteBody(c.Note))
		if err != nil {
			// A stored note that does not parse is served as stored;
			// verify names it. Its fields are what the row says.
			items = append(items, checkpointItem{Size: c.Size, Note: string(c.Note)})
			continue
		}
		items = append(items, checkpointItem{
			Origin: cp.Origin, Size: cp.Size, RootHash: base64.StdEncoding.EncodeToString(cp.Root[:]),
			Time: cp.Time.UTC().Format(time.RFC3339Nano), Note: string(c.Note),
		})
	}
	return items, next, nil
}

// noteBody is a signed note's text before its signatures (the blank line).
func noteBody(n []byte) string {
	for i := 0; i+1 < len(n); i++ {
		if n[i] == '\n' && n[i+1] == '\n' {
			return string(n[:i+1])
		}
	}
	return string(n)
}

// checkpoints serves GET …/namespaces/{ns}/checkpoints.
func (s *Server) checkpoints(w http.ResponseWriter, r *http.Request) {
	const sh = shapeStatus
	q, ns, logs, err := s.logRequest(r, resCheckpoints)
	if err != nil {
		s.fail(w, r, sh, "continue", err)
		return
	}
	items, next, err := s.readCheckpoints(r, q, ns, logs)
	if err != nil {
		s.fail(w, r, sh, "continue", err)
		return
	}
	b := []byte(`{"items":[`)
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"origin":`...)
		b = report.AppendJSONString(b, it.Origin)
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, it.Size, 10)
		b = append(b, `,"rootHash":`...)
		b = report.AppendJSONString(b, it.RootHash)
		b = append(b, `,"time":`...)
		b = report.AppendJSONString(b, it.Time)
		b = append(b, `,"note":`...)
		b = report.AppendJSONString(b, it.Note)
		b = append(b, '}')
	}
	b = append(b, `],"continue":`...)
	b = report.AppendJSONString(b, next)
	b = append(b, "}\n"...)
	writeJSON(w, b)
}

// checkpointColumns are the columns of a checkpoints Table.
var checkpointColumns = []metav1.TableColumnDefinition{
	{Name: "Size", Type: "integer", Description: "Leaves in the log at this checkpoint."},
	{Name: "Root", Type: "string", Description: "The tree's root hash (base64)."},
	{Name: "Time", Type: "string", Format: "date-time", Description: "When the manager signed it (UTC)."},
	{Name: "Origin", Type: "string", Priority: 1, Description: "The log's origin line."},
}

// tableCheckpoints answers a Table request for ns's checkpoints.
func (s *Server) tableCheckpoints(w http.ResponseWriter, r *http.Request, apiVersion string) {
	const sh = shapeStatus
	q, ns, logs, err := s.logRequest(r, resCheckpoints)
	if err != nil {
		s.fail(w, r, sh, "continue", err)
		return
	}
	items, next, err := s.readCheckpoints(r, q, ns, logs)
	if err != nil {
		s.fail(w, r, sh, "continue", err)
		return
	}
	rows := make([]metav1.TableRow, 0, len(items))
	for _, it := range items {
		rows = append(rows, metav1.TableRow{Cells: []any{it.Size, cell(it.RootHash), cell(it.Time), cell(it.Origin)}})
	}
	s.writeTable(w, r, apiVersion, checkpointColumns, rows, next)
}

// newestSize is the size of ns's newest checkpoint (0: none).
func newestSize(ctx context.Context, logs seal.LogReader, ns string) (int64, error) {
	cps, err := logs.Checkpoints(ctx, ns, 0, 1)
	if err != nil || len(cps) == 0 {
		return 0, err
	}
	return cps[0].Size, nil
}

// leaves serves GET …/namespaces/{ns}/leaves?start=I&end=J.
func (s *Server) leaves(w http.ResponseWriter, r *http.Request) {
	const sh = shapeStatus
	q, ns, logs, err := s.logRequest(r, resLeaves)
	if err != nil {
		s.fail(w, r, sh, "", err)
		return
	}
	start, err := int64Param(q, "start", -1, 0, 1<<62)
	if err != nil {
		s.fail(w, r, sh, "", err)
		return
	}
	end, err := int64Param(q, "end", -1, 1, 1<<62)
	if err != nil {
		s.fail(w, r, sh, "", err)
		return
	}
	if end <= start || end-start > leavesMax {
		s.fail(w, r, sh, "", badParam(fmt.Sprintf("end must be greater than start and at most %d past it, got start=%d end=%d", leavesMax, start, end)))
		return
	}
	ctx, cancel := s.storeCtx(r)
	defer cancel()
	size, err := newestSize(ctx, logs, ns)
	if err != nil {
		s.fail(w, r, sh, "", err)
		return
	}
	if end > size {
		s.fail(w, r, sh, "", badParam(fmt.Sprintf("end %d is past the log of namespace %q, whose newest checkpoint has size %d", end, ns, size)))
		return
	}
	ls, err := logs.Leaves(ctx, ns, start, end)
	if err != nil {
		s.fail(w, r, sh, "", err)
		return
	}
	b := make([]byte, 0, 64+len(ls)*180)
	b = append(b, `{"items":[`...)
	for i, l := range ls {
		if len(l.Data) != seal.LeafDataSize {
			s.fail(w, r, sh, "", fmt.Errorf("leaf %d of %s has %d bytes of data, want %d", l.Index, ns, len(l.Data), seal.LeafDataSize))
			return
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, l.Index, 10)
		b = append(b, `,"seq":`...)
		b = strconv.AppendInt(b, l.Seq, 10)
		b = append(b, `,"id":`...)
		b = report.AppendJSONString(b, l.ID)
		b = append(b, `,"time":`...)
		ts := time.Unix(0, int64(binary.BigEndian.Uint64(l.Data[:8]))).UTC()
		b = report.AppendJSONString(b, ts.Format(time.RFC3339Nano))
		b = append(b, `,"digest":"`...)
		b = hex.AppendEncode(b, l.Data[8:])
		b = append(b, `"}`...)
	}
	b = append(b, "]}\n"...)
	writeJSON(w, b)
}

// proofs serves GET …/namespaces/{ns}/proofs: ?size=N&index=I an inclusion
// proof, ?size=N&from=M a consistency proof (RFC 9162 2.1.3, 2.1.4).
func (s *Server) proofs(w http.ResponseWriter, r *http.Request) {
	const sh = shapeStatus
	q, ns, logs, err := s.logRequest(r, resProofs)
	if err != nil {
		s.fail(w, r, sh, "", err)
		return
	}
	size, err := int64Param(q, "size", -1, 1, 1<<62)
	if err != nil {
		s.fail(w, r, sh, "", err)
		return
	}
	_, hasIndex := q["index"]
	_, hasFrom := q["from"]
	if hasIndex == hasFrom {
		s.fail(w, r, sh, "", badParam("give exactly one of index (an inclusion proof of leaf index) and from (a consistency proof from tree size from)"))
		return
	}
	var index, from int64
	if hasIndex {
		index, err = int64Param(q, "index", -1, 0, size-1)
	} else {
		from, err = int64Param(q, "from", -1, 1, size)
	}
	if err != nil {
		s.fail(w, r, sh, "", err)
		return
	}
	ctx, cancel := s.storeCtx(r)
	defer cancel()
	cps, err := logs.Checkpoints(ctx, ns, size+1, 1)
	if err != nil {
		s.fail(w, r, sh, "", err)
		return
	}
	if len(cps) == 0 || cps[0].Size != size {
		s.fail(w, r, sh, "", &notFound{msg: fmt.Sprintf("namespace %q has no signed checkpoint of size %d", ns, size)})
		return
	}
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		return logs.ReadHashes(ctx, ns, indexes)
	})
	b := make([]byte, 0, 1024)
	var hashes []tlog.Hash
	if hasIndex {
		proof, err := tlog.ProveRecord(size, index, reader)
		if err != nil {
			s.fail(w, r, sh, "", fmt.Errorf("proving leaf %d in %s's tree of size %d: %w", index, ns, size, err))
			return
		}
		leaf, err := logs.Leaves(ctx, ns, index, index+1)
		if err != nil {
			s.fail(w, r, sh, "", err)
			return
		}
		if len(leaf) != 1 {
			s.fail(w, r, sh, "", fmt.Errorf("leaf %d of %s is not in the store", index, ns))
			return
		}
		lh := seal.LeafHash(leaf[0].Data)
		hashes = proof
		b = append(b, `{"size":`...)
		b = strconv.AppendInt(b, size, 10)
		b = append(b, `,"index":`...)
		b = strconv.AppendInt(b, index, 10)
		b = append(b, `,"leafHash":"`...)
		b = base64.StdEncoding.AppendEncode(b, lh[:])
		b = append(b, `","hashes":[`...)
	} else {
		proof, err := tlog.ProveTree(size, from, reader)
		if err != nil {
			s.fail(w, r, sh, "", fmt.Errorf("proving %s's tree of size %d extends size %d: %w", ns, size, from, err))
			return
		}
		hashes = proof
		b = append(b, `{"from":`...)
		b = strconv.AppendInt(b, from, 10)
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, size, 10)
		b = append(b, `,"hashes":[`...)
	}
	for i, h := range hashes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, h[:])
		b = append(b, '"')
	}
	b = append(b, "]}\n"...)
	writeJSON(w, b)
}

func writeJSON(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
