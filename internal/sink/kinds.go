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
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
)

// shardKind is what differs between keeping a report's shards in
// ConfigMaps and in Secrets; the layout is the same (spec/API.md section 5).
type shardKind interface {
	// String names the kind in messages.
	String() string
	// field is the spec.output field that selects the kind.
	field() string
	gvk() schema.GroupVersionKind
	// listable says whether the manager may list the kind: it never lists
	// Secrets (see NewSecret).
	listable() bool
	newObject() client.Object
	// build returns a shard holding exactly key: value; plain says the value
	// is the whole plain report rather than gzip bytes.
	build(meta metav1.ObjectMeta, key string, value []byte, plain bool) client.Object
	value(obj client.Object, key string) ([]byte, bool)
	ref(name, key string) reportsv1alpha1.OutputRef
}

type configMapKind struct{}

func (configMapKind) String() string { return "ConfigMap" }
func (configMapKind) field() string  { return "configMap" }
func (configMapKind) gvk() schema.GroupVersionKind {
	return corev1.SchemeGroupVersion.WithKind("ConfigMap")
}
func (configMapKind) listable() bool           { return true }
func (configMapKind) newObject() client.Object { return &corev1.ConfigMap{} }

// build puts a plain report in data (ConfigMap data values are strings; the
// caller checked it is UTF-8) and gzip bytes in binaryData.
func (configMapKind) build(meta metav1.ObjectMeta, key string, value []byte, plain bool) client.Object {
	cm := &corev1.ConfigMap{ObjectMeta: meta}
	if plain {
		cm.Data = map[string]string{key: string(value)}
	} else {
		cm.BinaryData = map[string][]byte{key: value}
	}
	return cm
}

func (configMapKind) value(obj client.Object, key string) ([]byte, bool) {
	cm := obj.(*corev1.ConfigMap)
	if v, ok := cm.Data[key]; ok {
		return []byte(v), true
	}
	v, ok := cm.BinaryData[key]
	return v, ok
}

func (configMapKind) ref(name, key string) reportsv1alpha1.OutputRef {
	return reportsv1alpha1.OutputRef{ConfigMap: name, Key: key}
}

type secretKind struct{}

func (secretKind) String() string { return "Secret" }
func (secretKind) field() string  { return "secret" }
func (secretKind) gvk() schema.GroupVersionKind {
	return corev1.SchemeGroupVersion.WithKind("Secret")
}
func (secretKind) listable() bool           { return false }
func (secretKind) newObject() client.Object { return &corev1.Secret{} }

func (secretKind) build(meta metav1.ObjectMeta, key string, value []byte, _ bool) client.Object {
	return &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{key: value}}
}

func (secretKind) value(obj client.Object, key string) ([]byte, bool) {
	v, ok := obj.(*corev1.Secret).Data[key]
	return v, ok
}

func (secretKind) ref(name, key string) reportsv1alpha1.OutputRef {
	return reportsv1alpha1.OutputRef{Secret: name, Key: key}
}
