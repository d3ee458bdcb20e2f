package events

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// A caller that may read the log makes its consumers through the owner (ServeReaders), not
// straight through the JetStream API. The request to make a consumer carries the consumer's
// whole configuration, which no subject permission can look into, and a push consumer's
// deliver subject may be any subject of the store account: nats-server publishes the
// stream's messages there as the account itself, so a reader could publish them onto
// another caller's change-feed subscription (any literal subject someone listens to), where
// nothing but the changes stream may publish. Callers only ever pull (a push consumer's
// messages could not leave the store account for theirs anyway), so the owner makes pull
// consumers alone.
//
// The caller's import maps $JS.API.CONSUMER.CREATE.<stream>[.<consumer>[.<filter>]], the
// subject every JetStream client uses, onto readerCreate.<stream>... in the store account,
// which the owner answers; the caller keeps the subject it publishes on and its permissions.
const readerCreate = "acl.log.create"

// consumerCreateAPI is the JetStream API subject the owner makes a reader's consumer with.
const consumerCreateAPI = "$JS.API.CONSUMER.CREATE"

// readerCreateWait bounds the owner's own request to the JetStream API.
const readerCreateWait = 10 * time.Second

// ServeReaders answers the consumer requests of callers that may read the stream (see
// readerCreate) until ctx ends or stop is called: it makes pull consumers on their behalf and
// refuses push consumers. The instances of a cluster answer in one queue group.
func (s *Store) ServeReaders(ctx context.Context) (stop func(), err error) {
	prefix := readerCreate + "." + s.name
	// One at a time, on the subscription's own goroutine: readers make a consumer now and
	// then, and a caller sending many requests costs acld no more than one in flight.
	sub, err := s.nc.QueueSubscribe(readerCreate+".>", QueueReaders, func(m *nats.Msg) {
		s.answerReader(ctx, prefix, m)
	})
	if err != nil {
		return nil, fmt.Errorf("events: subscribe to %s.>: %w", readerCreate, err)
	}
	fctx, cancel := context.WithTimeout(ctx, readerCreateWait)
	defer cancel()
	if err := s.nc.FlushWithContext(fctx); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("events: subscribe to %s.>: %w", readerCreate, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// QueueReaders is the queue group of ServeReaders.
const QueueReaders = "acld-readers"

// answerReader makes the consumer m asks for, or refuses it, and answers as the JetStream API
// does.
func (s *Store) answerReader(ctx context.Context, prefix string, m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	answer, err := s.readerConsumer(ctx, prefix, m)
	if err != nil {
		answer, _ = json.Marshal(server.JSApiConsumerCreateResponse{ApiResponse: server.ApiResponse{
			Type: server.JSApiConsumerCreateResponseType, Error: err}})
	}
	_ = m.Respond(answer)
}

// readerConsumer is answerReader's work: the JetStream API's answer, or the refusal.
func (s *Store) readerConsumer(ctx context.Context, prefix string, m *nats.Msg) ([]byte, *server.ApiError) {
	refuse := func(format string, args ...any) *server.ApiError {
		return &server.ApiError{Code: 400, ErrCode: server.ApiErrors[server.JSConsumerInvalidDeliverSubject].ErrCode,
			Description: "acld: " + fmt.Sprintf(format, args...)}
	}
	tail, ok := strings.CutPrefix(m.Subject, prefix)
	if !ok || (tail != "" && tail[0] != '.') {
		return nil, refuse("no stream %q here", strings.TrimPrefix(m.Subject, readerCreate+"."))
	}
	// Decoded as nats-server decodes it, and sent on encoded again: the server reads exactly
	// the configuration checked here, whatever the body's duplicate keys, case or trailing
	// values (the server decodes every value of a body in turn, the last winning).
	var req server.CreateConsumerRequest
	if err := json.Unmarshal(m.Data, &req); err != nil {
		return nil, refuse("the consumer request is not one JSON object of a consumer configuration: %v", err)
	}
	if req.Config.DeliverSubject != "" || req.Config.DeliverGroup != "" {
		return nil, refuse("callers may make pull consumers only: a push consumer would publish the stream on subjects of acld's account")
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, refuse("the consumer request cannot be encoded again: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, readerCreateWait)
	defer cancel()
	ans, err := s.nc.RequestWithContext(ctx, consumerCreateAPI+"."+s.name+tail, body)
	if err != nil {
		return nil, &server.ApiError{Code: 503, ErrCode: server.ApiErrors[server.JSClusterNotAvailErr].ErrCode,
			Description: "acld: the JetStream API did not answer: " + err.Error()}
	}
	return ans.Data, nil
}
