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

package ingest

import (
	"bufio"
	"errors"
	"reflect"
	"strings"
	"testing"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/auditops/auditops/internal/jsoncut"
	"github.com/auditops/auditops/internal/store"
)

// noCut is a limit no test body reaches: the reference decodes objects
// whole and truncates them after (truncateObjects), as before jsoncut.
// On the cut path nothing is left for truncateObjects to do (it would cut
// the markers again below MinMaxObjectBytes, which tests use to keep
// bodies small).
const noCut = 1 << 30

// truncateAfter is truncateObjects on the reference path only.
func truncateAfter(e *store.Event, max, limit int) int {
	if limit != noCut {
		return 0
	}
	return truncateObjects(e, max)
}

// cutKubeList decodes an EventList's items as the webhook's streaming path
// does and maps them; truncated counts the objects cut or truncated.
func cutKubeList(body string, max, limit int) (events []store.Event, truncated int, err error) {
	err = decodeEventListStd(strings.NewReader(body), limit, func(i int, ev *auditv1.Event, cut jsoncut.Item) error {
		out, ok, err := mapKubeAudit(ev, cut)
		if err != nil {
			return inputErr(atItem(i), err)
		}
		if ok {
			truncated += cut.Cuts + truncateAfter(&out, max, limit)
			events = append(events, out)
		}
		return nil
	})
	return events, truncated, err
}

// cutKubeLines decodes audit log lines as import does.
func cutKubeLines(body string, max, limit int) (events []store.Event, truncated int, err error) {
	lr := &lineReader{br: bufio.NewReaderSize(strings.NewReader(body), 16), cut: kubeCutter(jsoncut.Lines, limit), max: limit}
	for {
		line, n, ok, rerr := lr.next()
		if rerr != nil || !ok {
			return events, truncated, rerr
		}
		if blank(line) && lr.bad == nil {
			continue
		}
		var kev auditv1.Event
		lerr := lr.bad
		var ev store.Event
		stored := false
		if lerr == nil {
			if lerr = lr.decode(line, func(l []byte) error { return decodeAuditLine(l, &kev) }); lerr == nil {
				ev, stored, lerr = mapKubeAudit(&kev, lr.item)
			}
		}
		if lerr != nil {
			return nil, 0, inputErr(atLine(n), lerr)
		}
		if stored {
			truncated += lr.item.Cuts + truncateAfter(&ev, max, limit)
			events = append(events, ev)
		}
	}
}

// cutEvents decodes generic events (an array or NDJSON) as the events
// route and import do.
func cutEvents(body string, max, limit int) (events []store.Event, truncated int, err error) {
	err = decodeEvents(strings.NewReader(body), "", limit, func(ev store.Event, _, cuts int) error {
		truncated += cuts + truncateAfter(&ev, max, limit)
		events = append(events, ev)
		return nil
	})
	return events, truncated, err
}

// checkCutSame: cutting as the body streams in stores exactly what
// decoding whole and truncating after stores, and refuses the same bodies
// at the same place.
func checkCutSame(t *testing.T, decode func(body string, max, limit int) ([]store.Event, int, error), body string, max int) {
	t.Helper()
	want, wantN, wantErr := decode(body, max, noCut)
	got, gotN, err := decode(body, max, max)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("limit %d: cut as it streams: %v; whole, then truncated: %v", max, err, wantErr)
	}
	if err != nil {
		checkInputError(t, err)
		var a, b *InputError
		if errors.As(err, &a) && errors.As(wantErr, &b) && a.Where != b.Where {
			t.Fatalf("limit %d: refused at %q (%v), whole at %q (%v)", max, a.Where, err, b.Where, wantErr)
		}
		return
	}
	if gotN != wantN || !reflect.DeepEqual(got, want) {
		t.Fatalf("limit %d: cut as it streams (%d truncated):\n%+v\nwhole, then truncated (%d):\n%+v", max, gotN, got, wantN, want)
	}
}

// kubeItem is a create kube-apiserver would log (its timestamps are
// MicroTime: an item without the microseconds is refused).
func kubeItem(fields string) string {
	return `{"auditID":"a1","stage":"ResponseComplete","stageTimestamp":"2024-05-22T10:00:00.000000Z","verb":"create",` +
		`"objectRef":{"resource":"pods","namespace":"team-a"},"responseStatus":{"code":201}` + fields + `}`
}

var cutSeeds = []string{
	kubeItem(`,"requestObject":{"kind":"Pod","spec":{"containers":[{"name":"c","image":"nginx"}]}},"responseObject":{"kind":"Pod","metadata":{"name":"web-7f9","generateName":"web-"}}`),
	kubeItem(`,"responseObject":{"metadata":{"name":"a\u00e9b"},"metadata":{"labels":{}}}`),
	kubeItem(`,"ResponseObject":{"metadata":null,"Metadata":{"Name":"x","name":null}}`),
	kubeItem(`,"responseObject":{"metadata":{"name":7}},"responseObject":{"metadata":{"name":"late"}}`),
	kubeItem(`,"responseObject":"` + strings.Repeat("s", 40) + `","requestObject":12345678901234567890`),
	kubeItem(`,"responseObject":{"metadata":"x"}`),
	kubeItem(`,"responseObject":{"metadata":{"name":"first"}},"responseObject":null,"requestObject":[1,2,3,4,5,6,7,8,9],"requestObject":{}`),
	kubeItem(`,"responseObject":[{"metadata":{"name":"x"}}]`),
	kubeItem(`,"requestObject":{"a":tru}`),
	kubeItem(`,"requestObject":{"a":"` + strings.Repeat("x", 30) + `",}`),
	kubeItem(",\"requestObject\":{\"a\":\"\xff\xfe" + strings.Repeat("x", 30) + "\"}"),
}

func TestCutKubeSameAsTruncated(t *testing.T) {
	stored := 0
	for _, item := range cutSeeds {
		list := `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[` + item + `,` + item + `]}`
		for _, max := range []int{1, 8, 20, 64, 1000} {
			checkCutSame(t, cutKubeList, list, max)
			checkCutSame(t, cutKubeLines, item+"\n"+item+"\n", max)
		}
		events, _, _ := cutKubeList(list, 8, 8)
		stored += len(events)
	}
	// Most seeds decode: the test compares stored events, not refusals only.
	if stored < 2*(len(cutSeeds)-4) {
		t.Errorf("%d events stored from %d seeds", stored, len(cutSeeds))
	}
}

// TestCutDepth: encoding/json counts a value's nesting from its item, so
// a value 10,000 deep is one too deep to decode there: it is cut,
// whatever its size, on every path (the reference path too), where
// encoding/json takes it as a document of its own; 10,001 deep it is
// not JSON anyone sends, and is refused; 9,999 is kept whole.
func TestCutDepth(t *testing.T) {
	const maxObject = 64 << 10 // above the values' sizes: only depth cuts
	for _, tc := range []struct {
		depth int
		cuts  int // -1: refused
	}{{9999, 0}, {10000, 1}, {10001, -1}} {
		deep := strings.Repeat("[", tc.depth) + strings.Repeat("]", tc.depth)
		ev := `{"id":"e1","time":"2024-05-22T10:00:00Z","namespace":"team-a","user":"alice","request":` + deep + `}`
		item := kubeItem(`,"requestObject":` + deep)
		// A deep value the decoder never keeps: a later value of its field
		// is the one it stores, uncut (the attacker review found NDJSON
		// refusing it where the array stored it). Bodies 0 and 1 cut
		// nothing; the others, tc.cuts.
		over := `{"id":"e2","time":"2024-05-22T10:00:00Z","namespace":"team-a","user":"alice","request":` + deep + `,"request":{"a":1}}`
		bodies := []struct {
			decode func(string, int, int) ([]store.Event, int, error)
			body   string
		}{
			{cutEvents, over + "\n"},
			{cutEvents, "[" + over + "]"},
			{cutEvents, ev + "\n"},
			{cutEvents, "[" + ev + "]"},
			{cutKubeList, `{"kind":"EventList","items":[` + item + `]}`},
			{cutKubeLines, item + "\n"},
		}
		for i, b := range bodies {
			checkCutSame(t, b.decode, b.body, maxObject)
			for _, limit := range []int{maxObject, noCut} {
				events, cuts, err := b.decode(b.body, maxObject, limit)
				switch {
				case tc.cuts < 0 && err == nil:
					t.Errorf("depth %d, body %d, limit %d: stored, want refused", tc.depth, i, limit)
				case tc.cuts >= 0 && (err != nil || len(events) != 1 || cuts != min(tc.cuts, i/2)):
					t.Errorf("depth %d, body %d, limit %d: %d events, %d cut, %v; want 1, %d cut", tc.depth, i, limit, len(events), cuts, err, min(tc.cuts, i/2))
				}
			}
		}
	}
}

// TestCutLongName: a cut response object's metadata.name longer than 64
// KiB (kube-apiserver creates none) names nothing, where encoding/json
// would name it whole; a name after it still counts, as encoding/json
// keeps the last.
func TestCutLongName(t *testing.T) {
	long := strings.Repeat("n", 70<<10)
	pad := `,"spec":"` + strings.Repeat("p", 4096) + `"`
	for _, tc := range []struct{ object, entityID string }{
		{`{"metadata":{"name":"` + long + `"}` + pad + `}`, ""},
		{`{"metadata":{"name":"` + long + `","name":"web-1"}` + pad + `}`, "team-a/web-1"},
		{`{"metadata":{"name":"` + long + `"},"metadata":{"name":"web-1"}` + pad + `}`, "team-a/web-1"},
	} {
		item := kubeItem(`,"responseObject":` + tc.object)
		if tc.entityID != "" {
			checkCutSame(t, cutKubeList, `{"items":[`+item+`]}`, 1024)
			checkCutSame(t, cutKubeLines, item+"\n", 1024)
		}
		events, _, err := cutKubeList(`{"items":[`+item+`]}`, 1024, 1024)
		if err != nil || len(events) != 1 || events[0].EntityID != tc.entityID {
			t.Errorf("%.60s…: %v, want entityId %q", tc.object, err, tc.entityID)
		}
	}
}

func TestCutEventsSameAsTruncated(t *testing.T) {
	ev := func(fields string) string {
		return `{"id":"e1","time":"2024-05-22T10:00:00Z","namespace":"team-a","user":"alice"` + fields + `}`
	}
	for _, e := range []string{
		ev(`,"request":{"a":[1,2,{"b":"c"}]},"response":"` + strings.Repeat("r", 40) + `"`),
		ev(`,"Request":{"x":1},"currentState":{"spec":{"replicas":3}},"previousState":null`),
		ev(",\"request\":{\"a\":\"\xc3\xa9" + strings.Repeat("x", 30) + "\"}"),
		ev(",\"request\":{\"a\":\"\xc3" + strings.Repeat("x", 30) + "\"}"),
		ev(`,"request":{"a":1e5,"b":-0.5E-3,"c":[true,false,null]}`),
		ev(`,"request":{"a":01}`),
		ev(`,"request":[1,2,3,4,5,6,7,8,9,10],"request":null,"response":"` + strings.Repeat("r", 30) + `","RESPONSE":{}`),
	} {
		for _, max := range []int{1, 8, 20, 64, 1000} {
			checkCutSame(t, cutEvents, e+"\n"+e, max)
			checkCutSame(t, cutEvents, "["+e+","+e+"]", max)
		}
	}
}

func FuzzCutKube(f *testing.F) {
	for _, s := range cutSeeds {
		f.Add(s, uint8(8))
	}
	f.Fuzz(func(t *testing.T, item string, max uint8) {
		defer watchdog(item)()
		checkCutSame(t, cutKubeList, `{"items":[`+item+`]}`, int(max)+1)
		checkCutSame(t, cutKubeLines, item, int(max)+1)
	})
}

func FuzzCutEvents(f *testing.F) {
	f.Add(genericA+"\n"+genericB, uint8(8))
	f.Add("["+genericA+","+genericB+"]", uint8(30))
	f.Fuzz(func(t *testing.T, body string, max uint8) {
		defer watchdog(body)()
		checkCutSame(t, cutEvents, body, int(max)+1)
	})
}

// TestLimitBelowMarker: a limit below MinMaxObjectBytes (the flags refuse
// one) is raised to it, so a marker is never cut again (a marker of the
// marker, counted twice, before).
func TestLimitBelowMarker(t *testing.T) {
	st := newTestStore(t)
	svc := NewService(st, Options{MaxObjectBytes: 100})
	request := `"` + strings.Repeat("r", 2000) + `"`
	body := `{"id":"e1","time":"2024-05-22T10:00:00Z","namespace":"team-a","user":"alice","request":` + request + "}\n"
	res, err := svc.Events(t.Context(), strings.NewReader(body), -1, "", nil)
	if err != nil || res.Truncated != 1 {
		t.Fatalf("%+v, %v: want 1 object truncated", res, err)
	}
	want, _ := truncateObject([]byte(request), MinMaxObjectBytes)
	if got := storedEvents(t, st, "team-a"); len(got) != 1 || string(got[0].Request) != string(want) {
		t.Fatalf("stored %+v, want the request as %s", got, want)
	}
}
