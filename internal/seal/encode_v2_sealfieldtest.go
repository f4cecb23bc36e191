//go:build sealfieldtest

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

package seal

import "github.com/auditops/auditops/internal/store"

// The test build's encoding version 2: version 1 and the field the test
// build adds to events (store.Event.Zone), as a future version would.
func init() {
	encodings[2] = encodePartsV2
	currentEncoding = 2
}

func encodePartsV2(b []byte, e *store.Event) (out []byte, split int, err error) {
	out, split, err = encodeParts(b, e)
	if err != nil {
		return out, 0, err
	}
	// "zone" sorts after "user", the last member of version 1.
	out = append(out[:len(out)-1], ',')
	out = appendString(out, "zone", &err)
	out = append(out, ':')
	out = appendString(out, e.Zone, &err)
	return append(out, '}'), split, err
}
