package ingress

import (
	"errors"
	"unicode/utf8"

	"github.com/fasthttp/websocket"
)

// WebSocket text messages must be UTF-8 (RFC 6455 section 8.1: "When an endpoint is to interpret a byte
// stream as UTF-8 but finds that the byte stream is not, in fact, a valid UTF-8 stream, that endpoint
// MUST _Fail the WebSocket Connection_"; section 7.4.1: 1007 "data within a message that was not
// consistent with the type of the message"). On request-channel routes a text message that is not
// valid UTF-8 closes the socket with 1007 and cancels the channel; nothing of it reaches the backend.
// The other way, a backend item that is not valid UTF-8 is sent as a binary message even on a text
// route, so the gateway never sends an invalid text message itself.

// closeInvalidData is close code 1007.
const closeInvalidData = websocket.CloseInvalidFramePayloadData

// errInvalidUTF8: a text message that is not valid UTF-8.
var errInvalidUTF8 = errors.New("ingress: text message is not valid UTF-8")

// itemMessageType is the message type for an item on a route whose items are text (mt): binary when
// the item is not valid UTF-8.
func itemMessageType(mt int, item []byte) int {
	if mt == websocket.TextMessage && !utf8.Valid(item) {
		return websocket.BinaryMessage
	}
	return mt
}
