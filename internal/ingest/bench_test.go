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
	"bytes"
	"strings"
	"testing"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/auditops/auditops/internal/jsoncut"
	"github.com/auditops/auditops/internal/store"
)

func BenchmarkDecodeKubeAudit(b *testing.B) {
	body := webhookBody(400, "b")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := decodeEventList(bytes.NewReader(body), int64(len(body)), ReserveBytes(int64(len(body)), DefaultBatchMemoryBytes), DefaultMaxObjectBytes, func(int64) {}, func(i int, ev *auditv1.Event, _ jsoncut.Item) error {
			_, ok, err := MapKubeAudit(ev)
			if ok {
				n++
			}
			return err
		})
		if err != nil || n != 200 {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(400*b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkDecodeEventsNDJSON(b *testing.B) {
	benchmarkDecodeEvents(b, eventsBody(400, "b"))
}

// benchmarkDecodeEvents decodes a body of 400 generic events.
func benchmarkDecodeEvents(b *testing.B, body []byte) {
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := decodeEvents(bytes.NewReader(body), "", DefaultMaxObjectBytes, func(store.Event, int, int) error { n++; return nil })
		if err != nil || n != 400 {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkDecodeKubeAuditStreamed is the webhook's streaming path (a body
// of unknown length or over fastPathMaxBytes), objects cut as they stream.
func BenchmarkDecodeKubeAuditStreamed(b *testing.B) {
	body := webhookBody(400, "b")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := decodeEventList(bytes.NewReader(body), -1, ReserveBytes(-1, DefaultBatchMemoryBytes), DefaultMaxObjectBytes, func(int64) {}, func(i int, ev *auditv1.Event, _ jsoncut.Item) error {
			n++
			return nil
		})
		if err != nil || n != 400 {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkDecodeEventsArray is the events route's JSON array, streamed.
func BenchmarkDecodeEventsArray(b *testing.B) {
	benchmarkDecodeEvents(b, []byte("["+strings.ReplaceAll(strings.TrimSpace(string(eventsBody(400, "b"))), "\n", ",")+"]"))
}
