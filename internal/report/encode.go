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

// Package report turns store pages into report bytes. It holds the one row
// encoder per report type that both the AuditReport generators and the HTTP
// endpoints use, so a report file and an endpoint's pages match byte for byte
// (spec/API.md section 5), and the generators that page through the store.
//
// Encoders append to a caller's buffer instead of building values for
// encoding/json: a report streams millions of rows, and per-row allocations
// would dominate its cost.
package report

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/auditops/auditops/internal/store"
)

// Time layouts of the seed documents.
const (
	// ProtectoTimeLayout is the "YYYY-MM-DD HH:MM:SS" of seeds 000 and 001.
	ProtectoTimeLayout = "2006-01-02 15:04:05"
	// CSVTimeLayout is the When column of seed 002: UTC with milliseconds.
	CSVTimeLayout = "2006-01-02T15:04:05.000Z"
)

// CSVHeader is the header row of the network audit CSV (seed 002).
const CSVHeader = "MessageKey,EntityKey,EntityId,When,Principal,Message,PreviousState,CurrentState\r\n"

// The fields each encoder reads (besides Time and Seq): what its views ask
// the store for, and nothing more. TestEncoderFields holds each set to its
// encoder.
const (
	AuditDetailFields = store.FieldMethod | store.FieldUser | store.FieldStatus | store.FieldRequest | store.FieldError
	CSVFields         = store.FieldID | store.FieldEntity | store.FieldPrincipal | store.FieldMessage | store.FieldStates
	UserLogFields     = store.FieldMethod | store.FieldUser | store.FieldStatus | store.FieldStatusCode | store.FieldDevice
)

// AppendSummaryRow appends one namespace-users-summary detail object (3.1).
func AppendSummaryRow(b []byte, r store.SummaryRow) []byte {
	b = append(b, `{"date":`...)
	b = AppendJSONString(b, r.Date)
	b = append(b, `,"api_type":`...)
	b = AppendJSONString(b, r.API)
	b = append(b, `,"status":`...)
	b = AppendJSONString(b, r.Status)
	b = append(b, `,"user":`...)
	b = AppendJSONString(b, r.User)
	b = append(b, `,"logged_in_time":`...)
	b = strconv.AppendFloat(b, r.LoggedInSeconds, 'f', -1, 64)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, r.Count, 10)
	return append(b, '}')
}

// AppendAuditDetail appends one audit-details detail object (3.2).
func AppendAuditDetail(b []byte, e *store.Event) []byte {
	b = append(b, `{"requested_method":`...)
	b = AppendJSONString(b, e.Method)
	b = append(b, `,"requested_user":`...)
	b = AppendJSONString(b, e.User)
	b = append(b, `,"status":`...)
	b = AppendJSONString(b, e.Status)
	b = append(b, `,"input_payload":`...)
	b = appendRawJSON(b, e.Request)
	b = append(b, `,"response":`...)
	b = appendRawJSON(b, e.Response)
	b = append(b, `,"requested_time":"`...)
	b = e.Time.UTC().AppendFormat(b, ProtectoTimeLayout)
	b = append(b, `","error_log":`...)
	if e.Error == nil {
		b = append(b, "null"...)
	} else {
		b = AppendJSONString(b, *e.Error)
	}
	return append(b, '}')
}

// AppendUserLogItem appends one reportingInfoItems object (3.4): keys in the
// seed's (alphabetical) order; empty details, certificateSerialNumber and
// issuerDN are left out.
func AppendUserLogItem(b []byte, e *store.Event) []byte {
	b = append(b, `{"action":`...)
	b = AppendJSONString(b, e.Method)
	b = append(b, `,"archived":`...)
	b = strconv.AppendBool(b, e.Archived)
	if e.CertificateSerialNumber != "" {
		b = append(b, `,"certificateSerialNumber":`...)
		b = AppendJSONString(b, e.CertificateSerialNumber)
	}
	if e.Details != "" {
		b = append(b, `,"details":`...)
		b = AppendJSONString(b, e.Details)
	}
	b = append(b, `,"deviceId":`...)
	b = AppendJSONString(b, e.DeviceID)
	b = append(b, `,"id":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	if e.IssuerDN != "" {
		b = append(b, `,"issuerDN":`...)
		b = AppendJSONString(b, e.IssuerDN)
	}
	b = append(b, `,"logDate":"`...)
	b = strconv.AppendInt(b, e.Time.Unix(), 10)
	b = append(b, `","status":"`...)
	b = appendLogStatus(b, e)
	b = append(b, `","userId":`...)
	b = AppendJSONString(b, e.User)
	return append(b, '}')
}

// appendLogStatus is "0" for success, else the status code (3.4).
func appendLogStatus(b []byte, e *store.Event) []byte {
	if e.Status == store.StatusSuccess {
		return append(b, '0')
	}
	return strconv.AppendInt(b, int64(e.StatusCode), 10)
}

// AppendCSVRow appends one network-audit CSV record (3.3), RFC 4180: CRLF
// line ends, a field quoted when it holds a quote, comma, CR, LF or leading
// space, quotes doubled. A field that a spreadsheet would run as a formula
// gets a leading apostrophe (see appendCSVField).
func AppendCSVRow(b []byte, e *store.Event) []byte {
	b = appendCSVField(b, e.ID)
	b = append(b, ',')
	b = appendCSVField(b, e.EntityKind)
	b = append(b, ',')
	b = appendCSVField(b, e.EntityID)
	b = append(b, ',')
	b = e.Time.UTC().AppendFormat(b, CSVTimeLayout)
	b = append(b, ',')
	b = appendCSVField(b, string(e.Principal))
	b = append(b, ',')
	b = appendCSVField(b, e.Message)
	b = append(b, ',')
	b = appendCSVField(b, string(e.PreviousState))
	b = append(b, ',')
	b = appendCSVField(b, string(e.CurrentState))
	return append(b, '\r', '\n')
}

// FormatCSVTime formats t as the When column (and nextfromdate header).
func FormatCSVTime(t time.Time) string { return t.UTC().Format(CSVTimeLayout) }

// appendCSVField appends one field. Ids, messages and principals are chosen
// by clients (an Audit-ID header, a resource name), and a cell that starts
// with '=', '+', '-', '@', a tab or a carriage return runs as a formula when
// an auditor opens the export in a spreadsheet (CSV injection, OWASP): such
// a field is written with a leading "'" (spec/API.md 3.3), which
// spreadsheets show as text and encoding/csv reads back as part of the value.
func appendCSVField(b []byte, s string) []byte {
	formula := csvFormula(s)
	if !formula && !csvNeedsQuotes(s) {
		return append(b, s...)
	}
	if !csvNeedsQuotes(s) {
		b = append(b, '\'')
		return append(b, s...)
	}
	b = append(b, '"')
	if formula {
		b = append(b, '\'')
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"', '"')
			continue
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// csvFormula reports whether a spreadsheet would read s as a formula.
func csvFormula(s string) bool {
	if s == "" {
		return false
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return true
	}
	return false
}

func csvNeedsQuotes(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == ' ' || s[0] == '\t' {
		return true
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"', ',', '\r', '\n':
			return true
		}
	}
	return false
}

// appendRawJSON appends a stored JSON value, or null when there is none.
func appendRawJSON(b []byte, raw []byte) []byte {
	if len(raw) == 0 {
		return append(b, "null"...)
	}
	return append(b, raw...)
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does; HTML characters are not escaped (no browser reads
// these bodies as HTML, and the escapes only make reports harder to read).
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but end lines in JavaScript.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
