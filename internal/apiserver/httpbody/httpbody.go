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

// Package httpbody writes the audit API's JSON answers: every error body of
// every route, and ingest's results, go through it, so headers and shapes
// are set in one place.
package httpbody

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Write sends b as a JSON answer with status code.
func Write(w http.ResponseWriter, code int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// JSON sends v encoded, with a trailing newline.
func JSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own small structs are written; this cannot fail.
		b, code = []byte(`{"message":"internal error encoding the response"}`), http.StatusInternalServerError
	}
	Write(w, code, append(b, '\n'))
}

// Message sends {"message": msg}: the error shape of the network audit
// endpoints and of ingest (spec/API.md sections 2 and 3.3).
func Message(w http.ResponseWriter, code int, msg string) {
	JSON(w, code, struct {
		Message string `json:"message"`
	}{msg})
}

// RetryAfter sets Retry-After to d in whole seconds, at least one.
func RetryAfter(w http.ResponseWriter, d time.Duration) {
	secs := max(int((d+time.Second-1)/time.Second), 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
}
