package files

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"

	agentclient "github.com/workspaced/workspaced/agent/client"
)

// S3 is the part of *s3.Client the Store uses. The transfer manager needs
// the upload and read calls; pruning lists and deletes.
type S3 interface {
	transfermanager.S3APIClient
	DeleteObjects(ctx context.Context, in *s3.DeleteObjectsInput, opts ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error)
}

// Transports gives an HTTP transport to a workspace's agent; the runtimes
// (runtime/docker, runtime/ecs) satisfy it.
type Transports interface {
	Transport(endpoint string) (http.RoundTripper, error)
}

// Options configure a Store. Zero values take the defaults noted.
type Options struct {
	// Bucket holds the files (required).
	Bucket string
	// Prefix is put before every key ("workspaces/"; a missing trailing
	// slash is added). Empty by default.
	Prefix string
	// MaxDeltas is how many delta layers a tree's chain may have before a
	// save writes a fresh base (default DefaultMaxDeltas). A fresh base is
	// also written when the deltas' bytes exceed half the base's.
	MaxDeltas int
	// Keep is how many snapshots per conversation survive a save (default
	// DefaultKeep, at least 2 so that a concurrent save's snapshot is never
	// pruned under it). Older ones are deleted after the manifest moved
	// on; an S3 lifecycle rule is the backstop.
	Keep int
	// PartSize is the multipart part size (default DefaultPartSize, at
	// least 5 MiB, S3's minimum).
	PartSize int64
	// Concurrency is how many parts upload at once (default
	// DefaultConcurrency). A save holds about (Concurrency+1)*PartSize
	// bytes of memory, whatever the workspace's size.
	Concurrency int
	// GzipLevel is the compression level (default gzip.BestSpeed: a
	// release should not wait on the CPU).
	GzipLevel int
	// AbortTimeout bounds aborting a failed multipart upload, which runs
	// on a fresh context so a cancelled save still cleans up (default 30s).
	AbortTimeout time.Duration
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Registerer receives the metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Defaults for Options.
const (
	DefaultKeep         = 3
	DefaultMaxDeltas    = 16
	DefaultPartSize     = 8 << 20
	DefaultConcurrency  = 2
	DefaultAbortTimeout = 30 * time.Second
	minPartSize         = 5 << 20
)

// Store saves and restores workspace files in S3. It is safe for
// concurrent use; saves and restores of one conversation are not
// serialized against each other (the workers keep one workspace per
// conversation).
type Store struct {
	s3      S3
	tm      *transfermanager.Client
	tr      Transports
	opts    Options
	log     *slog.Logger
	metrics *metrics
}

// New returns a Store over client and bucket opts.Bucket, reaching agents
// through tr.
func New(client S3, tr Transports, opts Options) (*Store, error) {
	if client == nil || tr == nil {
		return nil, fmt.Errorf("files: S3 client and transports are required")
	}
	if opts.Bucket == "" {
		return nil, fmt.Errorf("files: Options.Bucket is required")
	}
	if opts.Prefix != "" && !strings.HasSuffix(opts.Prefix, "/") {
		opts.Prefix += "/"
	}
	if err := validPrefix(opts.Prefix); err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	tm := transfermanager.New(client, func(o *transfermanager.Options) {
		o.PartSizeBytes = opts.PartSize
		o.MultipartUploadThreshold = opts.PartSize
		o.Concurrency = opts.Concurrency
		o.FailTimeout = opts.AbortTimeout
		// The Store checks its own SHA-256; per-request checksums are
		// the SDK's default for integrity in transit.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenSupported
	})
	return &Store{
		s3: client, tm: tm, tr: tr, opts: opts, metrics: m,
		log: opts.Logger.With("component", "files", "bucket", opts.Bucket),
	}, nil
}

func (o *Options) defaults() error {
	if o.Keep == 0 {
		o.Keep = DefaultKeep
	}
	if o.MaxDeltas == 0 {
		o.MaxDeltas = DefaultMaxDeltas
	}
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.GzipLevel == 0 {
		o.GzipLevel = 1 // gzip.BestSpeed
	}
	if o.AbortTimeout == 0 {
		o.AbortTimeout = DefaultAbortTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch {
	case o.Keep < 2:
		return fmt.Errorf("files: Keep %d, want at least 2", o.Keep)
	case o.MaxDeltas < 1 || o.MaxDeltas > maxDeltas:
		return fmt.Errorf("files: MaxDeltas %d out of range", o.MaxDeltas)
	case o.PartSize < minPartSize:
		return fmt.Errorf("files: PartSize %d, want at least %d", o.PartSize, minPartSize)
	case o.Concurrency < 1:
		return fmt.Errorf("files: Concurrency %d, want at least 1", o.Concurrency)
	case o.GzipLevel < -2 || o.GzipLevel > 9:
		return fmt.Errorf("files: GzipLevel %d out of range", o.GzipLevel)
	case o.AbortTimeout < 0:
		return fmt.Errorf("files: negative AbortTimeout")
	}
	return nil
}

// agent returns a client for the agent at endpoint and a function that
// releases the transport's idle connections.
func (s *Store) agent(endpoint string) (*agentclient.Client, func(), error) {
	rt, err := s.tr.Transport(endpoint)
	if err != nil {
		return nil, nil, fmt.Errorf("transport to %s: %w", endpoint, err)
	}
	done := func() {
		if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
	// An http(s) endpoint is the agent's base URL (ECS); any other
	// (unix://) is reached through the transport whatever the URL says.
	if strings.HasPrefix(endpoint, "http://") || strings.HasPrefix(endpoint, "https://") {
		return agentclient.NewWithBaseURL(rt, endpoint), done, nil
	}
	return agentclient.New(rt), done, nil
}
