package events

import "context"

type correlationKey struct{}

// WithCorrelationID returns ctx carrying the correlation ID id: the API puts
// the HTTP request ID there, the bus's Router the handled message's
// correlation_id. Publishing with bus.Commands stamps it on the message;
// workers log it as "correlation_id".
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// CorrelationIDFromContext returns the ID WithCorrelationID stored, or "".
func CorrelationIDFromContext(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}
