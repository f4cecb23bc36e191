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

package migrate

import (
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0002_second.sql": {Data: []byte("B")},
		"m/0001_first.sql":  {Data: []byte("A")},
		"m/README.md":       {Data: []byte("ignored")},
	}
	all, err := Load(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Version != 1 || all[0].Name != "0001_first" || all[0].SQL != "A" || all[1].Version != 2 {
		t.Fatalf("Load = %+v", all)
	}
	if p, err := Pending(all, 1); err != nil || len(p) != 1 || p[0].Version != 2 {
		t.Fatalf("Pending(1) = %+v, %v", p, err)
	}
	if p, err := Pending(all, 2); err != nil || len(p) != 0 {
		t.Fatalf("Pending(2) = %+v, %v", p, err)
	}
	if _, err := Pending(all, 3); err == nil {
		t.Fatal("a database newer than the binary: no error")
	}
	for name, bad := range map[string]fstest.MapFS{
		"gap":      {"m/0001_a.sql": {}, "m/0003_c.sql": {}},
		"no start": {"m/0002_b.sql": {}},
		"dup":      {"m/0001_a.sql": {}, "m/1_b.sql": {}},
		"bad name": {"m/first.sql": {}},
	} {
		if _, err := Load(bad, "m"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
