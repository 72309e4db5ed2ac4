package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// A Source is the AWS service that sent an HTTP event.
type Source int

// The HTTP event sources. A function URL and a REST API get streamed
// responses; an HTTP API and an ALB get buffered ones.
const (
	FunctionURL Source = iota + 1 // a Lambda function URL
	RESTAPI                       // an API Gateway REST API
	HTTPAPI                       // an API Gateway HTTP API, payload format 2.0 or 1.0
	ALB                           // an Application Load Balancer target group
)

// String returns the source's name as AWS writes it.
func (s Source) String() string {
	switch s {
	case FunctionURL:
		return "function URL"
	case RESTAPI:
		return "API Gateway REST API"
	case HTTPAPI:
		return "API Gateway HTTP API"
	case ALB:
		return "Application Load Balancer"
	}
	return "unknown source"
}

// article returns the source's name with its indefinite article.
func (s Source) article() string {
	if s == FunctionURL {
		return "a " + s.String()
	}
	return "an " + s.String()
}

// streams reports whether the source relays a streamed response: function
// URLs in RESPONSE_STREAM mode and REST APIs whose integration's response
// transfer mode is STREAM do; HTTP APIs and ALBs take a whole response.
func (s Source) streams() bool { return s == FunctionURL || s == RESTAPI }

// An Event is the Lambda event that an HTTP request was made from. Source
// says which service sent it, and exactly one of the other fields, the one
// for that source, is set. Handlers get it with EventFromContext.
type Event struct {
	Source Source

	FunctionURL *events.LambdaFunctionURLRequest // Source FunctionURL
	Proxy       *events.APIGatewayProxyRequest   // Source RESTAPI, or HTTPAPI with payload format 1.0
	HTTPAPI     *events.APIGatewayV2HTTPRequest  // Source HTTPAPI with payload format 2.0
	ALB         *events.ALBTargetGroupRequest    // Source ALB
}

type eventKey struct{}

// EventFromContext returns the event that the request being served was
// made from. The context is the request's (r.Context()). The invocation's
// own details (request id, function ARN, deadline) are in the same context:
// see lambdacontext.FromContext.
func EventFromContext(ctx context.Context) (*Event, bool) {
	e, ok := ctx.Value(eventKey{}).(*Event)
	return e, ok
}

// ErrUnsupportedEvent is what every error for an event that is not an HTTP
// request matches (errors.Is).
var ErrUnsupportedEvent = errors.New("adapter: unsupported event")

// An UnsupportedEventError is returned for an event that is not an HTTP
// request from a function URL, API Gateway or an ALB. Lambda reports it as
// an invocation error of type UnsupportedEventError.
type UnsupportedEventError struct {
	Kind string // what the event is, as far as can be told: "an SQS event", "not a JSON object"
}

func (e *UnsupportedEventError) Error() string {
	return "adapter: unsupported event: " + e.Kind + "; this function serves HTTP requests from a function URL, an API Gateway REST or HTTP API, or an Application Load Balancer"
}

// Is makes errors.Is(err, ErrUnsupportedEvent) true.
func (e *UnsupportedEventError) Is(target error) bool { return target == ErrUnsupportedEvent }

// eventShape holds the fields that tell events apart. Fields whose type
// varies between event kinds are kept raw. (encoding/json matches keys
// without regard to case, so eventSource also catches SNS's EventSource,
// and Records Kinesis Firehose's records.)
type eventShape struct {
	Version     string          `json:"version"`
	Type        string          `json:"type"`
	MethodArn   string          `json:"methodArn"`
	RouteArn    string          `json:"routeArn"`
	RawPath     *string         `json:"rawPath"`
	HTTPMethod  string          `json:"httpMethod"`
	DetailType  string          `json:"detail-type"`
	EventSource string          `json:"eventSource"`
	Records     json.RawMessage `json:"Records"`
	Context     requestCtxShape `json:"requestContext"`
}

// eventSource returns the source that a record-carrying event names (SQS,
// S3, SNS, DynamoDB, Kinesis, Kafka, MQ ...), or "".
func (s *eventShape) eventSource() string {
	if s.EventSource != "" {
		return s.EventSource
	}
	var records []struct {
		EventSource string `json:"eventSource"`
	}
	if json.Unmarshal(s.Records, &records) == nil && len(records) > 0 {
		return records[0].EventSource
	}
	return ""
}

type requestCtxShape struct {
	HTTP         *json.RawMessage `json:"http"`
	ELB          *json.RawMessage `json:"elb"`
	DomainName   string           `json:"domainName"`
	Stage        string           `json:"stage"`
	ConnectionID string           `json:"connectionId"`
	EventType    string           `json:"eventType"`
}

// parseEvent tells which service sent payload and decodes it.
func parseEvent(payload []byte) (*Event, error) {
	var shape eventShape
	if err := json.Unmarshal(payload, &shape); err != nil {
		var object map[string]json.RawMessage
		if json.Unmarshal(payload, &object) != nil {
			return nil, &UnsupportedEventError{Kind: "not a JSON object"}
		}
		// An object whose fields are not those of an HTTP event.
		return nil, &UnsupportedEventError{Kind: "an event from no HTTP source"}
	}
	c := shape.Context
	var e Event
	var target any
	switch {
	case shape.eventSource() != "":
		return nil, &UnsupportedEventError{Kind: "an event from " + shape.eventSource()}
	case len(shape.Records) > 0 && string(shape.Records) != "null":
		return nil, &UnsupportedEventError{Kind: "an event with records"}
	case shape.Type != "" && (shape.MethodArn != "" || shape.RouteArn != ""):
		return nil, &UnsupportedEventError{Kind: "an API Gateway Lambda authorizer event"}
	case c.ConnectionID != "" || c.EventType != "":
		return nil, &UnsupportedEventError{Kind: "an API Gateway WebSocket event"}
	case c.ELB != nil && shape.HTTPMethod != "":
		e.Source, e.ALB = ALB, new(events.ALBTargetGroupRequest)
		target = e.ALB
	case shape.Version == "2.0" && shape.RawPath != nil && c.HTTP != nil:
		// Function URLs have domains of their own, <url-id>.lambda-url.<region>.on.aws,
		// even behind CloudFront; HTTP APIs have execute-api or custom domains.
		if strings.Contains(c.DomainName, ".lambda-url.") {
			e.Source, e.FunctionURL = FunctionURL, new(events.LambdaFunctionURLRequest)
			target = e.FunctionURL
		} else {
			e.Source, e.HTTPAPI = HTTPAPI, new(events.APIGatewayV2HTTPRequest)
			target = e.HTTPAPI
		}
	case shape.HTTPMethod != "" && c.Stage != "" && (shape.Version == "" || shape.Version == "1.0"):
		// REST APIs send no version; HTTP APIs with payload format 1.0 say 1.0.
		e.Source, e.Proxy = RESTAPI, new(events.APIGatewayProxyRequest)
		if shape.Version == "1.0" {
			e.Source = HTTPAPI
		}
		target = e.Proxy
	case shape.DetailType != "":
		return nil, &UnsupportedEventError{Kind: "an EventBridge event"}
	default:
		return nil, &UnsupportedEventError{Kind: "an event from no HTTP source"}
	}
	if err := json.Unmarshal(payload, target); err != nil {
		return nil, &UnsupportedEventError{Kind: "a malformed " + e.Source.String() + " event: " + err.Error()}
	}
	return &e, nil
}
