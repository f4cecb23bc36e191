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
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob" // azblob:// with the pod's ambient Azure identity (no credentials Secret)
	_ "gocloud.dev/blob/fileblob"  // file://
	_ "gocloud.dev/blob/gcsblob"   // gs:// with Google application default credentials (no credentials Secret)
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
	"github.com/auditops/auditops/internal/faultpoint"
	"github.com/auditops/auditops/internal/urlredact"
)

// Keys of the credentials Secret for s3:// URLs.
const (
	CredAccessKeyID     = "accessKeyID"
	CredSecretAccessKey = "secretAccessKey"
	CredSessionToken    = "sessionToken"
)

const (
	// uploadPartBytes is the multipart part size of the final upload: S3's
	// minimum, so the upload buffers little (uploadConcurrency parts at once)
	// however large the report. (The SDK's transfer manager also reads up to
	// its 16 MiB multipart threshold before choosing between one PUT and a
	// multipart upload; s3blob does not expose that setting.)
	uploadPartBytes   = 5 << 20
	uploadConcurrency = 2
	// partsSuffix names the staging "directory" beside the final key.
	partsSuffix = ".parts/"
)

// objectState is the object-store sink's part of Progress.State.
type objectState struct {
	// Parts is the number of staging parts stored; the next is numbered Parts.
	Parts int `json:"parts"`
}

// objectSink writes a report as one object. See NewObjectStore.
type objectSink struct {
	bucket *blob.Bucket
	// closeClient releases a client the bucket does not own (gs:// with
	// credentials); nil otherwise.
	closeClient func() error
	r           Report
	key         string
	url         string
	// fileDir is a file:// URL's directory, "" for other schemes.
	fileDir string

	// isS3 selects how a failed upload is abandoned (see publish); s3 and
	// bucketName find the multipart uploads a killed run left open.
	isS3       bool
	s3         *s3.Client
	bucketName string

	resumed bool
	err     error // sticky, as in configMapSink
	closed  bool
	// published holds Finish's outputs once the final object is complete.
	published []reportsv1alpha1.OutputRef

	chunks int
	bytes  int64
	parts  int
}

var (
	_ Sink      = (*objectSink)(nil)
	_ io.Closer = (*objectSink)(nil)
)

// NewObjectStore returns a sink that uploads the report as one object at
// <prefix>/<namespace>/<name>/report.<ext> of the bucket out.URL names (prefix
// is the URL's path; for file:// URLs the path is the directory and there is
// no prefix). The key is deterministic, so a retried run overwrites.
//
// Appended chunks are staged as objects <key>.parts/<NNNNNN>; Finish streams
// them in order, with the last bytes, into the final object (a multipart
// upload on S3, so the report is never held in memory) and deletes them.
//
// s3:// URLs with creds (the Secret's accessKeyID, secretAccessKey, optional
// sessionToken) use exactly those credentials and accept the query parameters
// region (required), endpoint, use_path_style (or s3ForcePathStyle),
// disable_https, request_checksum_calculation, response_checksum_validation,
// ssetype and kmskeyid. gs:// URLs with creds use the Secret's
// serviceAccountKey and accept endpoint; azblob:// URLs with creds use its
// accountName with accountKey or sasToken, or its connectionString, and accept
// endpoint or domain (see openGCS, openAzure). Without creds, s3://, gs:// and azblob:// URLs are
// opened by gocloud.dev with the pod's ambient identity (IRSA, workload
// identity, …) and its full set of parameters. file:// URLs write below the
// directory; no_tmp_dir is implied unless given, so temporary files are made
// beside the report rather than in os.TempDir (a rename across mounts fails).
//
// The sink holds the bucket open: Finish closes it on success, and Close
// releases it when a report is abandoned.
//
// Its errors name no secret: an SDK's transport errors (url.Error) carry
// the whole request URL, an Azure SAS token's sig= included, and they reach
// the report's status, its events and the manager's log.
func NewObjectStore(ctx context.Context, r Report, out reportsv1alpha1.ObjectStoreOutput, creds map[string][]byte) (Sink, error) {
	s, err := newObjectStore(ctx, r, out, creds)
	if err != nil {
		return nil, redactErr(err)
	}
	return redactingSink{s}, nil
}

// redactingSink is an objectSink whose errors are redacted (redactErr).
type redactingSink struct{ s *objectSink }

func (r redactingSink) Resume(ctx context.Context, p Progress) error {
	return redactErr(r.s.Resume(ctx, p))
}

func (r redactingSink) Append(ctx context.Context, chunk []byte) (Progress, error) {
	p, err := r.s.Append(ctx, chunk)
	return p, redactErr(err)
}

func (r redactingSink) Finish(ctx context.Context, last []byte, size int64, sum string) ([]reportsv1alpha1.OutputRef, error) {
	refs, err := r.s.Finish(ctx, last, size, sum)
	return refs, redactErr(err)
}

func (r redactingSink) Close() error { return redactErr(r.s.Close()) }

// redactedError is an error whose message hides the URLs' secrets; it
// unwraps to the original, so errors.Is and errors.As still see it.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactErr hides the secrets of every URL in err's message
// (urlredact.RedactText).
func redactErr(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if red := urlredact.RedactText(msg); red != msg {
		return &redactedError{msg: red, err: err}
	}
	return err
}

func newObjectStore(ctx context.Context, r Report, out reportsv1alpha1.ObjectStoreOutput, creds map[string][]byte) (*objectSink, error) {
	if err := r.validate(false); err != nil {
		return nil, err
	}
	u, err := url.Parse(out.URL)
	if err != nil {
		return nil, fmt.Errorf("report %s/%s: parsing objectStore.url: %w", r.Namespace, r.Name, err)
	}
	if u.User != nil {
		// Never echo secrets into status.outputs or logs.
		return nil, fmt.Errorf("report %s/%s: objectStore.url must not carry credentials; use credentialsSecretRef", r.Namespace, r.Name)
	}

	// base is the bucket's URL as shown in outputs: no query, no credentials.
	var prefix, base string
	open := *u
	switch u.Scheme {
	case "s3", "gs", "azblob":
		if u.Host == "" {
			return nil, fmt.Errorf("report %s/%s: objectStore.url %s names no bucket", r.Namespace, r.Name, urlredact.Redact(u.String()))
		}
		prefix = strings.Trim(u.Path, "/")
		base = u.Scheme + "://" + u.Host
		open.Path, open.RawPath = "", ""
	case "file":
		base = "file://" + strings.TrimRight(u.Path, "/")
		q := open.Query()
		if _, ok := q["no_tmp_dir"]; !ok {
			q.Set("no_tmp_dir", "true")
		}
		// No .attrs file beside the report: fileblob creates it with
		// os.Create, which follows a symbolic link planted at its name.
		q.Set("metadata", "skip")
		open.RawQuery = q.Encode()
	default:
		return nil, fmt.Errorf("report %s/%s: objectStore.url scheme %q is not one of s3, gs, azblob, file", r.Namespace, r.Name, u.Scheme)
	}
	key := strings.Join([]string{r.Namespace, r.Name, "report." + r.Ext}, "/")
	if prefix != "" {
		key = prefix + "/" + key
	}

	var bucket *blob.Bucket
	var closeClient func() error
	switch {
	case len(creds) > 0 && u.Scheme == "s3":
		bucket, err = openS3(ctx, &open, creds)
	case len(creds) > 0 && u.Scheme == "gs":
		bucket, closeClient, err = openGCS(ctx, &open, creds)
	case len(creds) > 0 && u.Scheme == "azblob":
		bucket, err = openAzure(ctx, &open, creds)
	case len(creds) > 0:
		err = fmt.Errorf("credentialsSecretRef is used only for s3://, gs:// and azblob:// URLs")
	default:
		bucket, err = blob.OpenBucket(ctx, open.String())
	}
	if err != nil {
		return nil, fmt.Errorf("report %s/%s: opening bucket %s: %w", r.Namespace, r.Name, base, err)
	}
	var s3c *s3.Client
	isS3 := bucket.As(&s3c)
	s := &objectSink{bucket: bucket, closeClient: closeClient, r: r, key: key, url: base + "/" + key, isS3: isS3, s3: s3c, bucketName: u.Host}
	if u.Scheme == "file" {
		s.fileDir = u.Path
	}
	return s, nil
}

// noLinks refuses to write a file:// report through a symbolic link below
// the URL's directory (its namespace's and its own directories, the
// staging one, the report itself): whoever else may write the shared
// directory could point one anywhere the manager may write, its store
// included. Destinations.Check refuses links between the listed prefix and
// the URL's directory. A link planted between the check and the write
// still races it: fileblob opens its own paths (no os.Root).
func (s *objectSink) noLinks() error {
	if s.fileDir == "" {
		return nil
	}
	parts := strings.Split(s.key, "/")
	paths := make([]string, 0, len(parts)+1)
	for i := range parts {
		paths = append(paths, filepath.Join(append([]string{s.fileDir}, parts[:i+1]...)...))
	}
	paths = append(paths, paths[len(paths)-1]+".parts")
	for _, p := range paths {
		if err := notALink(p); err != nil {
			return fmt.Errorf("report %s/%s: %w", s.r.Namespace, s.r.Name, err)
		}
	}
	return nil
}

// notALink says why path, if it exists, is not written through.
func notALink(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("checking %s: %w", path, err)
	case fi.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("%s is a symbolic link: a file:// report is not written through one", path)
	}
	return nil
}

// openS3 opens an S3 bucket with the Secret's static credentials. The AWS
// config is built here rather than by config.LoadDefaultConfig so that
// nothing from the manager's environment or home directory leaks in, and
// nothing process-wide is set.
func openS3(ctx context.Context, u *url.URL, creds map[string][]byte) (*blob.Bucket, error) {
	ak, sk := string(creds[CredAccessKeyID]), string(creds[CredSecretAccessKey])
	if ak == "" || sk == "" {
		return nil, fmt.Errorf("the credentials Secret needs both %s and %s", CredAccessKeyID, CredSecretAccessKey)
	}
	cfg := aws.Config{
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(ak, sk, string(creds[CredSessionToken]))),
	}
	var endpoint string
	var pathStyle, noHTTPS bool
	var opts s3blob.Options
	for name, values := range u.Query() {
		v := values[0]
		var err error
		switch name {
		case "region":
			cfg.Region = v
		case "endpoint":
			endpoint = v
		case "use_path_style", "s3ForcePathStyle":
			pathStyle, err = strconv.ParseBool(v)
		case "disable_https":
			noHTTPS, err = strconv.ParseBool(v)
		case "request_checksum_calculation":
			switch strings.ToLower(v) {
			case "when_supported":
				cfg.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenSupported
			case "when_required":
				cfg.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			default:
				err = errors.New("want when_supported or when_required")
			}
		case "response_checksum_validation":
			switch strings.ToLower(v) {
			case "when_supported":
				cfg.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenSupported
			case "when_required":
				cfg.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
			default:
				err = errors.New("want when_supported or when_required")
			}
		case "ssetype":
			opts.EncryptionType = s3types.ServerSideEncryption(v)
		case "kmskeyid":
			opts.KMSEncryptionID = v
		default:
			return nil, fmt.Errorf("unsupported s3 URL parameter %q (with credentialsSecretRef: region, endpoint, use_path_style, disable_https, request_checksum_calculation, response_checksum_validation, ssetype, kmskeyid)", name)
		}
		if err != nil {
			return nil, fmt.Errorf("s3 URL parameter %s=%q: %w", name, v, err)
		}
	}
	if cfg.Region == "" {
		// Request signatures include the region; guessing one fails later
		// with a less helpful error.
		return nil, errors.New("s3 URL needs a region parameter (…?region=us-east-1)")
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.UsePathStyle = pathStyle
		o.EndpointOptions.DisableHTTPS = noHTTPS
	})
	// s3blob's multipart uploader does not read this from the client.
	opts.RequestChecksumCalculation = cfg.RequestChecksumCalculation
	return s3blob.OpenBucket(ctx, client, u.Host, &opts)
}

func (s *objectSink) partsPrefix() string { return s.key + partsSuffix }
func (s *objectSink) partKey(i int) string {
	return fmt.Sprintf("%s%06d", s.partsPrefix(), i)
}

// partIndex returns i for a staging key written by partKey.
func (s *objectSink) partIndex(key string) (int, bool) {
	rest, ok := strings.CutPrefix(key, s.partsPrefix())
	if !ok || len(rest) < 6 {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 || fmt.Sprintf("%06d", i) != rest {
		return 0, false
	}
	return i, true
}

func (s *objectSink) Resume(ctx context.Context, p Progress) error {
	s.err, s.published = nil, nil
	if s.closed {
		return fmt.Errorf("report %s/%s: the object-store sink is closed", s.r.Namespace, s.r.Name)
	}
	if err := s.noLinks(); err != nil {
		return err
	}
	st := objectState{}
	if len(p.State) == 0 {
		if p.Chunks != 0 || p.Bytes != 0 {
			return fmt.Errorf("resuming report %s/%s: progress of %d chunks carries no object-store sink state", s.r.Namespace, s.r.Name, p.Chunks)
		}
	} else if err := json.Unmarshal(p.State, &st); err != nil {
		return fmt.Errorf("resuming report %s/%s: decoding object-store sink state: %w", s.r.Namespace, s.r.Name, err)
	}
	if st.Parts < 0 {
		return fmt.Errorf("resuming report %s/%s: invalid object-store sink state (%d parts)", s.r.Namespace, s.r.Name, st.Parts)
	}

	// Parts at or past the checkpoint were stored after it (or by an earlier
	// run when starting afresh): drop them so each byte is stored once. The
	// ones before it must all be there, or the report cannot be completed.
	have, size := 0, int64(0)
	err := s.eachStaged(ctx, func(obj *blob.ListObject) error {
		if i, ok := s.partIndex(obj.Key); ok && i < st.Parts {
			have++
			size += obj.Size
			return nil
		}
		return s.delete(ctx, obj.Key)
	})
	if err != nil {
		return fmt.Errorf("resuming report %s/%s: %w", s.r.Namespace, s.r.Name, err)
	}
	if err := s.abortOpenUploads(ctx); err != nil {
		return fmt.Errorf("resuming report %s/%s: %w", s.r.Namespace, s.r.Name, err)
	}
	if have != st.Parts || size != p.Bytes {
		return fmt.Errorf("resuming report %s/%s: found %d staging parts of %d bytes under %s, the checkpoint covers %d parts of %d bytes: %w",
			s.r.Namespace, s.r.Name, have, size, s.partsPrefix(), st.Parts, p.Bytes, ErrStartOver)
	}
	s.chunks, s.bytes, s.parts = p.Chunks, p.Bytes, st.Parts
	s.resumed = true
	return nil
}

func (s *objectSink) Append(ctx context.Context, chunk []byte) (Progress, error) {
	if err := s.ready(); err != nil {
		return Progress{}, err
	}
	// An empty chunk adds nothing to the report: no part, no round trip.
	if len(chunk) > 0 {
		key := s.partKey(s.parts)
		err := s.bucket.WriteAll(ctx, key, chunk, &blob.WriterOptions{ContentType: "application/octet-stream"})
		if err != nil {
			s.err = fmt.Errorf("report %s/%s: storing staging part %s: %w", s.r.Namespace, s.r.Name, key, err)
			return Progress{}, s.err
		}
		s.parts++
	}
	s.chunks++
	s.bytes += int64(len(chunk))
	st, err := json.Marshal(objectState{Parts: s.parts})
	if err != nil {
		s.err = fmt.Errorf("report %s/%s: encoding object-store sink state: %w", s.r.Namespace, s.r.Name, err)
		return Progress{}, s.err
	}
	return Progress{Chunks: s.chunks, Bytes: s.bytes, State: st}, nil
}

func (s *objectSink) Finish(ctx context.Context, last []byte, size int64, sum string) ([]reportsv1alpha1.OutputRef, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	if err := s.noLinks(); err != nil {
		return nil, err
	}
	if s.published == nil {
		got, err := s.publish(ctx, last, size, sum)
		if err != nil {
			s.err = fmt.Errorf("report %s/%s: %w", s.r.Namespace, s.r.Name, err)
			return nil, s.err
		}
		s.published = []reportsv1alpha1.OutputRef{{URL: s.url, Bytes: size, SHA256: got}}
	}
	// The report is published and the staging parts are garbage. If deleting
	// them fails, Finish fails but stays retryable: the retry skips the upload
	// (some parts may already be gone) and only deletes again.
	if err := s.eachStaged(ctx, func(obj *blob.ListObject) error { return s.delete(ctx, obj.Key) }); err != nil {
		return nil, fmt.Errorf("report %s/%s: removing staging parts: %w", s.r.Namespace, s.r.Name, err)
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	return s.published, nil
}

// abortOpenUploads aborts the multipart uploads of the report's key that a
// run killed while publishing left open: S3 keeps (and bills) their parts
// until aborted, and lists them to whoever lists uploads. Only this
// report's key is touched; one run at a time writes it. Credentials that may
// not list multipart uploads (s3:ListBucketMultipartUploads) skip this: a
// bucket lifecycle rule (AbortIncompleteMultipartUpload) is then what
// cleans up, and the report is not held up for it.
func (s *objectSink) abortOpenUploads(ctx context.Context) error {
	if s.s3 == nil {
		return nil
	}
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(s.bucketName), Prefix: aws.String(s.key)}
	for {
		out, err := s.s3.ListMultipartUploads(ctx, in)
		var denied smithy.APIError
		if errors.As(err, &denied) && denied.ErrorCode() == "AccessDenied" {
			return nil
		}
		if err != nil {
			return fmt.Errorf("listing open multipart uploads of %s: %w", s.url, err)
		}
		for _, u := range out.Uploads {
			if aws.ToString(u.Key) != s.key {
				continue
			}
			if _, err := s.s3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket: aws.String(s.bucketName), Key: u.Key, UploadId: u.UploadId,
			}); err != nil {
				return fmt.Errorf("aborting the open multipart upload %s of %s: %w", aws.ToString(u.UploadId), s.url, err)
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// publish streams the staging parts and last into the final object and
// returns its SHA-256. Unless the bytes match size and sum, the upload is
// abandoned and an earlier object at the key stays as it was.
func (s *objectSink) publish(ctx context.Context, last []byte, size int64, sum string) (string, error) {
	// The size is known before uploading anything; the checksum only after.
	if n := s.bytes + int64(len(last)); n != size {
		return verify(s.r, n, "", size, sum)
	}
	uctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rd := &reportReader{ctx: ctx, s: s, last: last, h: sha256.New(), size: size, sum: sum}
	if !s.isS3 {
		// fileblob and gcsblob publish whatever was read when a read fails;
		// only a cancelled context before Close discards it. S3 must not be
		// cancelled: its uploader aborts the multipart upload on the same
		// context, and would leave it open (and billed) otherwise.
		rd.abort = cancel
	}
	err := s.bucket.Upload(uctx, s.key, rd, &blob.WriterOptions{
		ContentType:    s.contentType(),
		BufferSize:     uploadPartBytes,
		MaxConcurrency: uploadConcurrency,
	})
	rd.close()
	if rd.err != nil && rd.err != io.EOF {
		return "", rd.err
	}
	if err != nil {
		return "", fmt.Errorf("uploading %s: %w", s.url, err)
	}
	return rd.got, nil
}

// reportReader reads the staging parts in order, then last. It hashes what
// it reads and, at the end, returns an error instead of io.EOF unless the
// bytes match the expected size and sum, so the uploader gives up rather
// than completing the object.
type reportReader struct {
	ctx       context.Context
	s         *objectSink
	last      []byte
	h         hash.Hash
	n         int64
	size      int64
	sum       string
	abort     func() // called before a failure is returned, if set
	next      int    // the next part to open
	cur       io.ReadCloser
	lastTaken bool
	got       string // the sum, once everything was read and matched
	err       error  // sticky: io.EOF or the failure
}

func (r *reportReader) Read(p []byte) (int, error) {
	for r.err == nil {
		if r.cur == nil {
			switch {
			case r.next < r.s.parts:
				key := r.s.partKey(r.next)
				rc, err := r.s.bucket.NewReader(r.ctx, key, nil)
				if err != nil {
					return 0, r.fail(fmt.Errorf("reading staging part %s: %w", key, err))
				}
				r.cur = rc
				r.next++
			case !r.lastTaken:
				r.cur, r.lastTaken = io.NopCloser(bytes.NewReader(r.last)), true
			default:
				got, err := verify(r.s.r, r.n, hex.EncodeToString(r.h.Sum(nil)), r.size, r.sum)
				if err != nil {
					return 0, r.fail(err)
				}
				r.got, r.err = got, io.EOF
				return 0, io.EOF
			}
		}
		n, err := r.cur.Read(p)
		r.h.Write(p[:n])
		if (r.n+int64(n))/uploadPartBytes > r.n/uploadPartBytes {
			faultpoint.Hit("objectstore-in-upload") // a part's worth handed to the uploader
		}
		r.n += int64(n)
		if errors.Is(err, io.EOF) {
			_ = r.cur.Close()
			r.cur = nil
			err = nil
		}
		if err != nil {
			return n, r.fail(fmt.Errorf("reading staging part %s: %w", r.s.partKey(r.next-1), err))
		}
		if n > 0 {
			return n, nil
		}
	}
	return 0, r.err
}

func (r *reportReader) fail(err error) error {
	r.err = err
	if r.abort != nil {
		r.abort()
	}
	return err
}

func (r *reportReader) close() {
	if r.cur != nil {
		_ = r.cur.Close()
		r.cur = nil
	}
}

// eachStaged calls fn for every object under the staging prefix.
func (s *objectSink) eachStaged(ctx context.Context, fn func(*blob.ListObject) error) error {
	it := s.bucket.List(&blob.ListOptions{Prefix: s.partsPrefix()})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("listing %s: %w", s.partsPrefix(), err)
		}
		if obj.IsDir {
			continue
		}
		if err := fn(obj); err != nil {
			return err
		}
	}
}

func (s *objectSink) delete(ctx context.Context, key string) error {
	if err := s.bucket.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	return nil
}

func (s *objectSink) contentType() string {
	if s.r.ContentType != "" {
		return s.r.ContentType
	}
	if s.r.Ext == "csv" {
		return "text/csv"
	}
	return "application/json"
}

func (s *objectSink) ready() error {
	switch {
	case s.closed:
		return fmt.Errorf("report %s/%s: the object-store sink is closed", s.r.Namespace, s.r.Name)
	case !s.resumed:
		return fmt.Errorf("report %s/%s: the object-store sink needs Resume before Append or Finish", s.r.Namespace, s.r.Name)
	case s.err != nil:
		return fmt.Errorf("report %s/%s: an earlier write failed, resume from the last checkpoint: %w", s.r.Namespace, s.r.Name, s.err)
	}
	return nil
}

// Close releases the bucket. Finish calls it; a caller that abandons a report
// should call it too. Calling it again does nothing.
func (s *objectSink) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.bucket.Close()
	if s.closeClient != nil {
		err = errors.Join(err, s.closeClient())
	}
	if err != nil {
		return fmt.Errorf("report %s/%s: closing bucket: %w", s.r.Namespace, s.r.Name, err)
	}
	return nil
}
