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

package sink

import (
	"errors"
	"fmt"
	"strings"
)

// ErrStartOver is wrapped by Resume when what is stored no longer matches the
// checkpoint (a shard or staging part is missing or short, as after a Finish
// that completed but was never recorded). The report cannot continue from
// there; the caller regenerates it from a zero Progress.
var ErrStartOver = errors.New("stored report does not match the checkpoint; start over")

// validate checks what both sinks rely on; needUID is for owner references.
func (r Report) validate(needUID bool) error {
	switch {
	case r.Namespace == "" || r.Name == "":
		return fmt.Errorf("report %s/%s: namespace and name are required", r.Namespace, r.Name)
	case needUID && r.UID == "":
		return fmt.Errorf("report %s/%s: the AuditReport's UID is required to own its ConfigMaps", r.Namespace, r.Name)
	case r.Ext != "json" && r.Ext != "csv":
		return fmt.Errorf("report %s/%s: extension %q is neither json nor csv", r.Namespace, r.Name, r.Ext)
	}
	return nil
}

// verify checks the stored report against what the caller says it produced
// and returns the checksum to record. An empty sum accepts the sink's own.
func verify(r Report, gotSize int64, gotSum string, size int64, sum string) (string, error) {
	if gotSize != size {
		return "", fmt.Errorf("report %s/%s: stored %d bytes but the report has %d", r.Namespace, r.Name, gotSize, size)
	}
	if sum != "" && !strings.EqualFold(sum, gotSum) {
		return "", fmt.Errorf("report %s/%s: stored bytes have SHA-256 %s but the report's is %s", r.Namespace, r.Name, gotSum, sum)
	}
	return gotSum, nil
}
