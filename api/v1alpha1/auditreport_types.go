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

package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReportType names what an AuditReport produces; each matches one endpoint of
// the audit API (spec/API.md section 5).
// +kubebuilder:validation:Enum=NamespaceUsersSummary;AuditDetails;UserAccess;Users;UserLogs
type ReportType string

const (
	// NamespaceUsersSummary is one row per (date, user, api, status), as JSON.
	NamespaceUsersSummary ReportType = "NamespaceUsersSummary"
	// AuditDetails is every request of the tenant in time order, as JSON.
	AuditDetails ReportType = "AuditDetails"
	// UserAccess is the tenant's access events (authentication, denials), as CSV.
	UserAccess ReportType = "UserAccess"
	// Users is the tenant's identity and grant changes, as CSV.
	Users ReportType = "Users"
	// UserLogs is one user's events newest first, as JSON.
	UserLogs ReportType = "UserLogs"
)

// ReportPhase is where a report stands.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed;Scheduled;Suspended
type ReportPhase string

const (
	// PhaseScheduled and PhaseSuspended are the phases of a scheduled parent,
	// whose runs are child AuditReports.
	PhaseScheduled ReportPhase = "Scheduled"
	PhaseSuspended ReportPhase = "Suspended"

	PhasePending   ReportPhase = "Pending"
	PhaseRunning   ReportPhase = "Running"
	PhaseSucceeded ReportPhase = "Succeeded"
	PhaseFailed    ReportPhase = "Failed"
)

// Condition types set on an AuditReport.
const (
	// ConditionReady is True once the report's output is complete.
	ConditionReady = "Ready"
	// ConditionProgressing is True while the report is being generated or retried.
	ConditionProgressing = "Progressing"
	// ConditionFailed is True when the report cannot be produced without a change.
	ConditionFailed = "Failed"
)

// ReportRange is the time window a report covers, [from, to): either an
// absolute from/to or a duration before each run's start.
// +kubebuilder:validation:XValidation:rule="has(self.last) != (has(self.from) || has(self.to))",message="range needs exactly one of: from and to (an absolute window), or last (a duration before each run, such as 24h)"
// +kubebuilder:validation:XValidation:rule="has(self.from) == has(self.to)",message="range.from and range.to must be set together"
// +kubebuilder:validation:XValidation:rule="!has(self.from) || !has(self.to) || self.to > self.from",message="range.to must be later than range.from"
type ReportRange struct {
	// From is the inclusive start of an absolute window (RFC 3339).
	// +optional
	From *metav1.Time `json:"from,omitempty"`
	// To is the exclusive end of an absolute window (RFC 3339).
	// +optional
	To *metav1.Time `json:"to,omitempty"`
	// Last is a window ending at each run's start (rounded up to a whole
	// second), as a Go duration (24h, 90m, 168h).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) > duration('0s')",message="range.last must be a positive duration such as 24h, 90m or 168h (units: ns, us, ms, s, m, h)"
	Last *metav1.Duration `json:"last,omitempty"`
}

// ConfigMapOutput writes the report into ConfigMaps (or, as SecretOutput,
// Secrets) in the AuditReport's namespace: whole when it fits, else
// gzip-compressed and, when even that is too large, cut into numbered objects.
type ConfigMapOutput struct {
	// NamePrefix names the objects <namePrefix>-0..n, listed in order in
	// status.outputs. Defaults to the AuditReport's name.
	// +optional
	// +kubebuilder:validation:MaxLength=240
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="namePrefix must be a lowercase DNS name: letters, digits, '-' and '.'"
	NamePrefix string `json:"namePrefix,omitempty"`
	// Compress is auto (gzip only when the plain report passes ~900 KiB) or
	// always.
	// +optional
	// +kubebuilder:default=auto
	// +kubebuilder:validation:Enum=auto;always
	Compress string `json:"compress,omitempty"`
}

// SecretOutput writes the report into Secrets (type Opaque) in the
// AuditReport's namespace, in the ConfigMap output's layout and with its
// settings: for reports that carry payloads (AuditDetails, UserLogs), since a
// ConfigMap is readable by the built-in view role and a Secret is not.
type SecretOutput = ConfigMapOutput

// ObjectStoreOutput uploads the report as one object.
type ObjectStoreOutput struct {
	// URL is a gocloud.dev blob URL: s3://bucket/prefix?region=…&endpoint=…,
	// gs://bucket/prefix, azblob://container/prefix or file:///dir. The object key is
	// <prefix>/<namespace>/<name>/report.<json|csv>.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:XValidation:rule="self.matches('^(s3|gs|azblob|file)://.+')",message="objectStore.url must be an s3://, gs://, azblob:// or file:// URL"
	URL string `json:"url"`
	// CredentialsSecretRef names a Secret in the AuditReport's namespace with
	// the store's credentials. S3: accessKeyID, secretAccessKey, optional
	// sessionToken. GCS: serviceAccountKey (a service-account key's JSON).
	// Azure: accountName with accountKey or sasToken, or connectionString.
	// +optional
	CredentialsSecretRef *corev1.LocalObjectReference `json:"credentialsSecretRef,omitempty"`
}

// ReportOutput says where a finished report goes: exactly one of its fields.
// +kubebuilder:validation:XValidation:rule="(has(self.configMap) ? 1 : 0) + (has(self.secret) ? 1 : 0) + (has(self.objectStore) ? 1 : 0) == 1",message="output must set exactly one of configMap, secret or objectStore"
type ReportOutput struct {
	// +optional
	ConfigMap *ConfigMapOutput `json:"configMap,omitempty"`
	// Secret keeps the report in Secrets <namePrefix>-0..n (type Opaque),
	// in the configMap output's layout: for reports that carry payloads.
	// +optional
	Secret *SecretOutput `json:"secret,omitempty"`
	// +optional
	ObjectStore *ObjectStoreOutput `json:"objectStore,omitempty"`
}

// AuditReportSpec declares a report: its type, tenant, window and output.
// +kubebuilder:validation:XValidation:rule="self.type != 'UserLogs' || (has(self.user) && size(self.user) > 0)",message="type UserLogs needs spec.user: the user whose logs to report"
// +kubebuilder:validation:XValidation:rule="!has(self.schedule) || has(self.range.last)",message="a scheduled report needs range.last (the window before each run), not an absolute from/to"
// +kubebuilder:validation:XValidation:rule="!has(self.timeZone) || has(self.schedule)",message="timeZone applies only to a scheduled report: set schedule too"
type AuditReportSpec struct {
	// Type is the report to produce.
	// +required
	Type ReportType `json:"type"`

	// Namespace is the audited tenant; defaults to the AuditReport's own
	// namespace. Only AuditReports in the manager's admin namespace may name
	// another.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Namespace string `json:"namespace,omitempty"`

	// User keeps one user's events; required for UserLogs.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	User string `json:"user,omitempty"`

	// Range is the window the report covers.
	// +required
	Range ReportRange `json:"range"`

	// Schedule makes this AuditReport a parent that creates one child
	// AuditReport per run, in cron format ("0 6 * * *", "@daily", "@every 6h").
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every ([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+|[0-9A-Za-z*?/,-]+( +[0-9A-Za-z*?/,-]+){4})$')",message="schedule must be a cron expression of five fields (minute hour day-of-month month day-of-week, such as \"0 6 * * *\") or a descriptor such as @daily or @every 6h"
	Schedule string `json:"schedule,omitempty"`

	// TimeZone is the IANA time zone of Schedule (default UTC).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	TimeZone *string `json:"timeZone,omitempty"`

	// SuccessfulRunsHistoryLimit is how many succeeded children a scheduled
	// parent keeps.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=0
	SuccessfulRunsHistoryLimit *int32 `json:"successfulRunsHistoryLimit,omitempty"`

	// FailedRunsHistoryLimit is how many failed children a scheduled parent keeps.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	FailedRunsHistoryLimit *int32 `json:"failedRunsHistoryLimit,omitempty"`

	// Suspend stops a scheduled parent from starting new runs.
	// +optional
	Suspend *bool `json:"suspend,omitempty"`

	// SettleDelay is how long after each scheduled time its run starts, so
	// that the window's events that arrive late (kube-apiserver's audit
	// webhook batches, buffers and retries) are in it. The window is not
	// moved: a run at 06:00 still covers the time up to 06:00. Default: the
	// manager's --schedule-settle-delay (60s).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) <= duration('24h')",message="settleDelay must be a duration from 0s to 24h such as 60s or 5m (units: ns, us, ms, s, m, h)"
	SettleDelay *metav1.Duration `json:"settleDelay,omitempty"`

	// PageSize is how many rows the generator reads from the store at a time.
	// +optional
	// +kubebuilder:default=500
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	PageSize int32 `json:"pageSize,omitempty"`

	// Output is where the finished report goes (default: ConfigMaps).
	// +optional
	// +kubebuilder:default={configMap:{}}
	Output *ReportOutput `json:"output,omitempty"`
}

// ResolvedRange is the absolute window a run covered, [from, to).
type ResolvedRange struct {
	From metav1.Time `json:"from"`
	To   metav1.Time `json:"to"`
}

// OutputRef is one place that holds (part of) a finished report.
type OutputRef struct {
	// ConfigMap is the name of a ConfigMap in the AuditReport's namespace.
	// +optional
	ConfigMap string `json:"configMap,omitempty"`
	// Secret is the name of a Secret in the AuditReport's namespace.
	// +optional
	Secret string `json:"secret,omitempty"`
	// Key is the ConfigMap or Secret key holding the data.
	// +optional
	Key string `json:"key,omitempty"`
	// URL is the object holding the whole report.
	// +optional
	URL string `json:"url,omitempty"`
	// Bytes is the size of the report's plain (uncompressed) bytes.
	// +optional
	Bytes int64 `json:"bytes,omitempty"`
	// SHA256 is the hex SHA-256 of the report's plain bytes, so a copy can be verified.
	// +optional
	SHA256 string `json:"sha256,omitempty"`
}

// ReportHolder names the manager generating a report, as a
// coordination.k8s.io Lease names its holder.
type ReportHolder struct {
	// Identity is the manager's --identity (default: its host name).
	Identity string `json:"identity"`
	// RenewTime is when the holder last wrote the report's status.
	RenewTime metav1.MicroTime `json:"renewTime"`
}

// ReportSeal is the checkpoint of the tenant's tamper-evident log a report
// read (spec/API.md 6): the report holds exactly the events of that tree in
// its range. Kept in etcd, outside the audit store, it is also a witness of
// the log ('manager verify --trusted-from-reports').
type ReportSeal struct {
	// Origin is the log's origin line, e.g. auditops/team-a.
	Origin string `json:"origin"`
	// Size is the tree size: the number of the log's leaves.
	// +kubebuilder:validation:Minimum=0
	Size int64 `json:"size"`
	// RootHash is the tree's root hash, base64 (empty for an empty log).
	// +optional
	RootHash string `json:"rootHash,omitempty"`
}

// AuditReportStatus is where a report stands.
type AuditReportStatus struct {
	// +optional
	Phase ReportPhase `json:"phase,omitempty"`
	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Tenant is the audited namespace, resolved from spec.namespace.
	// +optional
	Tenant string `json:"tenant,omitempty"`
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Range is the resolved, absolute window of this run.
	// +optional
	Range *ResolvedRange `json:"range,omitempty"`
	// Records is the number of rows written.
	// +optional
	Records int64 `json:"records"`
	// Pages is the number of store pages read.
	// +optional
	Pages int64 `json:"pages,omitempty"`
	// Checkpoint is the page token to resume from after a restart.
	// +optional
	Checkpoint string `json:"checkpoint,omitempty"`
	// Seal is the checkpoint of the tenant's log the report reads, taken
	// before its first page; unset when the manager does not seal.
	// +optional
	Seal *ReportSeal `json:"seal,omitempty"`
	// Holder is the manager generating the report while it runs. Another
	// manager takes the report over only once the holder has not renewed
	// for the manager's hold duration (no wait under leader election):
	// without it, two replicas whose leases overlap would both write the
	// report's outputs, and one could delete what the other had listed.
	// +optional
	Holder *ReportHolder `json:"holder,omitempty"`
	// Outputs lists, in order, where the report was written.
	// +optional
	Outputs []OutputRef `json:"outputs,omitempty"`
	// LastScheduleTime is when a scheduled parent last started a run.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`
	// Active lists a scheduled parent's running children.
	// +optional
	Active []corev1.ObjectReference `json:"active,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ar,categories=auditops
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Tenant",type=string,JSONPath=`.status.tenant`
// +kubebuilder:printcolumn:name="From",type=string,JSONPath=`.status.range.from`
// +kubebuilder:printcolumn:name="To",type=string,JSONPath=`.status.range.to`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Records",type=integer,JSONPath=`.status.records`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.spec.schedule`,priority=1
// +kubebuilder:printcolumn:name="Last Run",type=date,JSONPath=`.status.lastScheduleTime`,priority=1
// +kubebuilder:printcolumn:name="Sealed",type=integer,JSONPath=`.status.seal.size`,priority=1,description="Size of the tenant log's checkpoint the report read"

// AuditReport declares an audit report of one tenant over a time window; the
// controller pages through the audit store and writes it to ConfigMaps or
// object storage.
type AuditReport struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AuditReportSpec   `json:"spec"`
	Status AuditReportStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// AuditReportList contains a list of AuditReport.
type AuditReportList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AuditReport `json:"items"`
}
