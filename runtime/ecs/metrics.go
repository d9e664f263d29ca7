package ecs

import (
	"context"
	"errors"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the runtime's Prometheus collectors.
type metrics struct {
	runTaskCalls    prometheus.Counter
	runTaskFailures *prometheus.CounterVec // by failure reason
	apiErrors       *prometheus.CounterVec // by operation and error code, after retries
	throttles       *prometheus.CounterVec // by operation, every throttled attempt
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		runTaskCalls: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "workspaced", Subsystem: "ecs", Name: "run_task_calls_total",
			Help: "RunTask operations started (one per Start that reaches ECS; SDK retries not counted).",
		}),
		runTaskFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "workspaced", Subsystem: "ecs", Name: "run_task_failures_total",
			Help: "RunTask failures by reason: ECS failures[] reasons (RESOURCE:MEMORY, ...) or the API error code.",
		}, []string{"reason"}),
		apiErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "workspaced", Subsystem: "ecs", Name: "api_errors_total",
			Help: "ECS API calls that failed after the SDK's retries, by operation and error code.",
		}, []string{"operation", "code"}),
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "workspaced", Subsystem: "ecs", Name: "throttled_attempts_total",
			Help: "ECS API attempts answered with a throttling error (retried by the adaptive retryer).",
		}, []string{"operation"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.runTaskCalls, m.runTaskFailures, m.apiErrors, m.throttles} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// throttleCounter is a per-attempt middleware (the Deserialize step runs
// inside the retry loop; placed first so it sees the deserialized error)
// that counts throttled attempts by operation.
func (m *metrics) throttleCounter(stack *middleware.Stack) error {
	isThrottle := retry.IsErrorThrottles(retry.DefaultThrottles)
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("WorkspacedThrottleCounter",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleDeserialize(ctx, in)
			if err != nil && isThrottle.IsErrorThrottle(err).Bool() {
				m.throttles.WithLabelValues(awsmiddleware.GetOperationName(ctx)).Inc()
			}
			return out, md, err
		}), middleware.Before)
}

// apiError records a failed call and returns err unchanged.
func (m *metrics) apiError(op string, err error) error {
	code := "other"
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	m.apiErrors.WithLabelValues(op, code).Inc()
	return err
}
