package files_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/workspaced/workspaced/files"
)

var errInjected = errors.New("injected S3 failure")

// faultyS3 is the emulator's client with injected failures: a part upload
// that fails, a hook run before each part, a manifest write that fails.
type faultyS3 struct {
	*s3.Client
	failPart     atomic.Int32 // part number that fails (0: none)
	failManifest atomic.Bool
	onPart       func(part int32)
	parts        atomic.Int32 // part uploads attempted
}

var _ files.S3 = (*faultyS3)(nil)

func (f *faultyS3) UploadPart(ctx context.Context, in *s3.UploadPartInput, opts ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	n := aws.ToInt32(in.PartNumber)
	f.parts.Add(1)
	if f.onPart != nil {
		f.onPart(n)
	}
	if n == f.failPart.Load() {
		return nil, errInjected
	}
	return f.Client.UploadPart(ctx, in, opts...)
}

func (f *faultyS3) PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	if f.failManifest.Load() && strings.HasSuffix(aws.ToString(in.Key), "/manifest.json") {
		return nil, errInjected
	}
	return f.Client.PutObject(ctx, in, opts...)
}

// countingS3 counts calls and answers none of them.
type countingS3 struct {
	files.S3 // nil: any call not overridden panics
	calls    atomic.Int64
}

func (c *countingS3) GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	c.calls.Add(1)
	return nil, errInjected
}

func (c *countingS3) PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	c.calls.Add(1)
	return nil, errInjected
}

func (c *countingS3) CreateMultipartUpload(context.Context, *s3.CreateMultipartUploadInput, ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	c.calls.Add(1)
	return nil, errInjected
}
