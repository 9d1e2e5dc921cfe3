package anthropic

// modelCreated is the created_at every listed model reports: the gateway
// does not know when an upstream released a model, and the field is required.
const modelCreated = "2024-01-01T00:00:00Z"

// ModelList returns GET /v1/models in Anthropic's list shape, for a client
// that sent anthropic-version. The list is never paged: has_more is false.
func ModelList(ids []string) []byte {
	b := make([]byte, 0, 64+len(ids)*112)
	b = append(b, `{"data":[`...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":"model","id":`...)
		b = appendString(b, id)
		b = append(b, `,"display_name":`...)
		b = appendString(b, id)
		b = append(b, `,"created_at":"`+modelCreated+`"}`...)
	}
	b = append(b, `],"has_more":false,"first_id":`...)
	if len(ids) > 0 {
		b = appendString(b, ids[0])
		b = append(b, `,"last_id":`...)
		b = appendString(b, ids[len(ids)-1])
	} else {
		b = append(b, `null,"last_id":null`...)
	}
	return append(b, '}')
}
