package main

import (
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/workspaced/workspaced/config"
	"github.com/workspaced/workspaced/files"
	"github.com/workspaced/workspaced/workers"
)

// files.Store is the workers' Saver and Restorer.
var (
	_ workers.Saver    = (*files.Store)(nil)
	_ workers.Restorer = (*files.Store)(nil)
)

// newFiles builds S3 persistence of workspace files (saved on release,
// restored before a workspace serves its conversation), or nil when
// WORKSPACE_FILES_BUCKET is empty.
func newFiles(cfg config.Config, awsCfg aws.Config, tr files.Transports, reg prometheus.Registerer, log *slog.Logger) (*files.Store, error) {
	if cfg.Files.Bucket == "" {
		return nil, nil
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if ep := cfg.AWS.Endpoint("s3"); ep != "" {
			o.BaseEndpoint = aws.String(ep)
			o.UsePathStyle = true // emulators and LocalStack
		}
	})
	fs, err := files.New(client, tr, files.Options{Bucket: cfg.Files.Bucket, Prefix: cfg.Files.Prefix, Keep: cfg.Files.Keep, MaxDeltas: cfg.Files.MaxDeltas, Logger: log, Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("build files store: %w", err)
	}
	return fs, nil
}
