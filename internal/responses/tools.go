package responses

import (
	"encoding/json"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// A chat upstream knows only flat function tools. The Responses API also has
// custom tools (free-text input) and namespaces grouping function and custom
// tools. The bridge flattens both into chat functions and keeps a table to
// name the calls back: "crm" + "lookup" is sent as "crm__lookup" and a call
// of "crm__lookup" comes back as {"namespace":"crm","name":"lookup"}; a custom
// tool becomes a function taking {"input": string} whose calls come back as
// custom_tool_call items carrying that input.

// toolName is a tool as the client names it.
type toolName struct {
	namespace, name string
	custom          bool
}

// toolNames maps chat function names to the client's tools and back.
type toolNames struct {
	byFlat map[string]toolName
	byName map[toolName]string
}

// maxFunctionName is OpenAI's limit on function names (^[a-zA-Z0-9_-]{1,64}$).
const maxFunctionName = 64

// add registers a tool and returns its chat function name.
func (n *toolNames) add(t toolName) string {
	if f, ok := n.byName[t]; ok {
		return f
	}
	if n.byFlat == nil {
		n.byFlat, n.byName = map[string]toolName{}, map[toolName]string{}
	}
	flat := sanitizeName(joinName(t.namespace, t.name))
	if _, taken := n.byFlat[flat]; taken {
		flat = hashedName(flat, t.namespace+"\x00"+t.name)
	}
	n.byFlat[flat], n.byName[t] = t, flat
	return flat
}

// flat is the chat name of a tool the client named in its input (a call it
// passes back); tools it did not declare get the same flattening.
func (n *toolNames) flat(t toolName) string {
	if f, ok := n.byName[t]; ok {
		return f
	}
	t.custom = !t.custom // a call item may name either kind: try the other
	if f, ok := n.byName[t]; ok {
		return f
	}
	return sanitizeName(joinName(t.namespace, t.name))
}

// resolve names a chat function call back as the client declared it.
func (n *toolNames) resolve(flat string) (namespace, name string, kind int) {
	if n != nil {
		if t, ok := n.byFlat[flat]; ok {
			if t.custom {
				return t.namespace, t.name, kindCustom
			}
			return t.namespace, t.name, kindFunction
		}
	}
	return "", flat, kindFunction
}

func joinName(namespace, name string) string {
	switch {
	case namespace == "":
		return name
	case strings.HasSuffix(namespace, "__"):
		return namespace + name
	}
	return namespace + "__" + name
}

// sanitizeName makes s a valid chat function name.
func sanitizeName(s string) string {
	ok := len(s) > 0 && len(s) <= maxFunctionName
	for i := 0; ok && i < len(s); i++ {
		ok = isNameByte(s[i])
	}
	if ok {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if !isNameByte(c) {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	if len(b) > maxFunctionName {
		return hashedName(string(b), s)
	}
	return string(b)
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// hashedName shortens base and suffixes a hash of key, so distinct tools
// keep distinct names within the length limit.
func hashedName(base, key string) string {
	h := fnv.New32a()
	h.Write([]byte(key)) //nolint:errcheck // hash writes cannot fail
	sum := strconv.FormatUint(uint64(h.Sum32()), 16)
	return base[:min(len(base), maxFunctionName-1-len(sum))] + "_" + sum
}

// chatTool is a chat completions tool.
type chatTool struct {
	Type     string       `json:"type"`
	Function chatFunction `json:"function"`
}

type chatFunction struct {
	Name        string          `json:"name"`
	Description json.RawMessage `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      json.RawMessage `json:"strict,omitempty"`
}

// customParameters is the schema of a custom tool turned function.
var customParameters = json.RawMessage(`{"type":"object","properties":{"input":{"type":"string","description":"The tool's input, as free text in the format described."}},"required":["input"],"additionalProperties":false}`)

// translateTools turns Responses tools into chat functions. Tools a chat
// upstream cannot run (hosted ones such as web_search) are left out.
func translateTools(tools gjson.Result, names *toolNames, log *slog.Logger) []chatTool {
	var out []chatTool
	tools.ForEach(func(_, t gjson.Result) bool {
		m := readMembers(t)
		switch typ := m.typ.String(); typ {
		case "function", "custom":
			out = append(out, chatToolOf(&m, "", names))
		case "namespace":
			ns := m.name.String()
			m.tools.ForEach(func(_, sub gjson.Result) bool {
				sm := readMembers(sub)
				switch st := sm.typ.String(); st {
				case "function", "custom":
					out = append(out, chatToolOf(&sm, ns, names))
				default:
					log.Debug("responses bridge: left out a namespace tool a chat upstream cannot run", "namespace", ns, "type", st)
				}
				return true
			})
		default:
			log.Debug("responses bridge: left out a tool a chat upstream cannot run", "type", typ)
		}
		return true
	})
	return out
}

func chatToolOf(t *members, namespace string, names *toolNames) chatTool {
	custom := t.typ.String() == "custom"
	name := names.add(toolName{namespace: namespace, name: t.name.String(), custom: custom})
	f := chatFunction{Name: name, Description: raw(t.description)}
	if !custom {
		f.Parameters, f.Strict = raw(t.parameters), raw(t.strict)
		return chatTool{Type: "function", Function: f}
	}
	desc := t.description.String()
	if fm := t.format; fm.Get("type").String() == "grammar" {
		desc += "\n\nThe input must follow this " + fm.Get("syntax").String() + " grammar:\n" + fm.Get("definition").String()
	}
	f.Description, _ = json.Marshal(desc) //nolint:errcheck // a string always marshals
	f.Parameters = customParameters
	return chatTool{Type: "function", Function: f}
}

// translateToolChoice maps tool_choice to chat's; "" leaves it out.
func translateToolChoice(tc gjson.Result, names *toolNames, log *slog.Logger) json.RawMessage {
	switch {
	case !tc.Exists() || tc.Type == gjson.Null:
		return nil
	case tc.Type == gjson.String:
		return json.RawMessage(tc.Raw)
	}
	switch typ := tc.Get("type").String(); typ {
	case "function", "custom":
		name := names.flat(toolName{namespace: tc.Get("namespace").String(), name: tc.Get("name").String(), custom: typ == "custom"})
		b := appendString([]byte(`{"type":"function","function":{"name":`), name)
		return append(b, "}}"...)
	case "allowed_tools":
		if tc.Get("mode").String() == "required" {
			return json.RawMessage(`"required"`)
		}
		return json.RawMessage(`"auto"`)
	default:
		log.Debug("responses bridge: tool_choice names a tool a chat upstream cannot run; using auto", "type", typ)
		return json.RawMessage(`"auto"`)
	}
}

// customInput is a custom tool call's input: the "input" member of the
// function arguments the model produced, or the arguments themselves when
// the model did not follow the schema.
func customInput(args []byte) string {
	if in := gjson.GetBytes(args, "input"); in.Type == gjson.String {
		return in.Str
	}
	return string(args)
}

// raw is a JSON value from the request, nil when absent or null.
func raw(v gjson.Result) json.RawMessage {
	if !v.Exists() || v.Type == gjson.Null {
		return nil
	}
	return json.RawMessage(v.Raw)
}

// members are the members of an input item, content part or tool that the
// bridge reads, found in one pass over the object (a Get per member would
// scan it once each).
type members struct {
	typ, role, content, name, namespace, arguments, input, callID, output gjson.Result
	text, description, parameters, strict, format, tools                  gjson.Result
}

func readMembers(v gjson.Result) members {
	var m members
	v.ForEach(func(k, x gjson.Result) bool {
		switch k.Str {
		case "type":
			m.typ = x
		case "role":
			m.role = x
		case "content":
			m.content = x
		case "name":
			m.name = x
		case "namespace":
			m.namespace = x
		case "arguments":
			m.arguments = x
		case "input":
			m.input = x
		case "call_id":
			m.callID = x
		case "output":
			m.output = x
		case "text":
			m.text = x
		case "description":
			m.description = x
		case "parameters":
			m.parameters = x
		case "strict":
			m.strict = x
		case "format":
			m.format = x
		case "tools":
			m.tools = x
		}
		return true
	})
	return m
}
