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

package e2e

import (
	"strconv"
	"strings"
	"testing"
)

// TestDemoActivityReachesTheAPIAndTheSamples: make run's demo (hack/demo.sh,
// run by TestMain's hack/run-local.sh with RUN_LOCAL_DEMO=1) acted in
// team-a as alice and bob through kube-apiserver; their requests, allowed
// and denied, are in the audit API as kubectl prints them, and the sample
// reports it re-created ran over them.
func TestDemoActivityReachesTheAPIAndTheSamples(t *testing.T) {
	if !strings.Contains(upOutput, "[demo] sample reports done") {
		t.Fatalf("the demo did not finish:\n%s", upOutput)
	}
	for _, tc := range []struct {
		user string
		want []string // VERB RESOURCE STATUS CODE, as the table prints them
	}{
		{"alice", []string{
			"create /configmaps success 201", "patch /configmaps success 200", "delete /configmaps success 200",
			"list /pods success 200", "list /secrets failure 403",
		}},
		{"bob", []string{
			"get /configmaps success 200", "list /pods success 200", "get /pods success 200",
			"delete /configmaps failure 403", "delete /pods failure 403",
		}},
	} {
		t.Run(tc.user, func(t *testing.T) {
			// The Table path of the audit API, as a user would ask.
			out := k(t, "get", "auditdetails", "-n", "team-a", "--field-selector", "user="+tc.user, "--no-headers")
			seen := map[string]bool{}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				// TIME USER VERB RESOURCE STATUS CODE
				if f := strings.Fields(line); len(f) == 6 && f[1] == tc.user {
					seen[strings.Join(f[2:], " ")] = true
				}
			}
			for _, w := range tc.want {
				if !seen[w] {
					t.Errorf("kubectl get auditdetails -n team-a --field-selector user=%s lacks %q:\n%s", tc.user, w, out)
				}
			}
		})
	}

	// Every sample report of team-a ran over the activity and found rows;
	// the scheduled one waits for its time.
	out := k(t, "get", "auditreports", "-n", "team-a", "--no-headers",
		"-o", "custom-columns=NAME:.metadata.name,PHASE:.status.phase,RECORDS:.status.records")
	reports := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("unexpected line %q in:\n%s", line, out)
		}
		reports[f[0]] = true
		if f[0] == "team-a-daily" {
			if f[1] != "Scheduled" {
				t.Errorf("team-a-daily is %s, want Scheduled", f[1])
			}
			continue
		}
		if n, _ := strconv.Atoi(f[2]); f[1] != "Succeeded" || n == 0 {
			t.Errorf("sample report %s: phase %s, %s records; want Succeeded with rows", f[0], f[1], f[2])
		}
	}
	for _, name := range []string{"team-a-users-summary", "team-a-audit-details", "team-a-user-access", "team-a-identity-changes", "alice-logs", "team-a-daily"} {
		if !reports[name] {
			t.Errorf("sample report %s is missing:\n%s", name, out)
		}
	}
	// The payload reports went to Secrets, as the samples say.
	if got := k(t, "get", "secret", "alice-logs-0", "-n", "team-a", "-o", "jsonpath={.data.report\\.json}"); got == "" {
		t.Errorf("alice-logs-0 holds no report.json")
	}
}
