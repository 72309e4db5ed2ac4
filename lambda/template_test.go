//go:build !js && !wasip1

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// loadTemplate parses template.yaml the way CloudFormation reads it: the
// short forms of the intrinsic functions (!Ref x, !GetAtt a.b, !Sub s, ...)
// become their long forms ({"Ref": x}, {"Fn::GetAtt": ["a", "b"]}, ...).
func loadTemplate(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile("../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	v, err := cfnValue(doc.Content[0])
	if err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	return v.(map[string]any)
}

// intrinsics are the short-form tags CloudFormation accepts.
var intrinsics = map[string]bool{
	"!Ref": true, "!GetAtt": true, "!Sub": true, "!If": true, "!Equals": true,
	"!Not": true, "!And": true, "!Or": true, "!Join": true, "!Select": true,
	"!Split": true, "!FindInMap": true, "!GetAZs": true, "!ImportValue": true,
	"!Base64": true, "!Cidr": true, "!Condition": true,
}

func cfnValue(n *yaml.Node) (any, error) {
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		if !intrinsics[n.Tag] {
			return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
		}
		plain := *n
		plain.Tag = ""
		inner, err := cfnValue(&plain)
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(n.Tag, "!")
		switch name {
		case "Ref", "Condition":
			return map[string]any{name: inner}, nil
		case "GetAtt":
			if s, ok := inner.(string); ok {
				resource, attr, _ := strings.Cut(s, ".")
				inner = []any{resource, attr}
			}
		}
		return map[string]any{"Fn::" + name: inner}, nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i < len(n.Content); i += 2 {
			key := n.Content[i].Value
			if _, dup := m[key]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %s", n.Content[i].Line, key)
			}
			v, err := cfnValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[key] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := cfnValue(c)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, err
		}
		return v, nil
	case yaml.AliasNode:
		return nil, fmt.Errorf("line %d: YAML aliases are not supported by CloudFormation", n.Line)
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
}

// at returns the value at a path of keys in v.
func at(t *testing.T, v any, path ...string) any {
	t.Helper()
	for i, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s is not a mapping", strings.Join(path[:i], "."))
		}
		if v, ok = m[k]; !ok {
			t.Fatalf("template has no %s", strings.Join(path[:i+1], "."))
		}
	}
	return v
}

func TestTemplateFunction(t *testing.T) {
	tpl := loadTemplate(t)
	if got := at(t, tpl, "Transform"); got != "AWS::Serverless-2016-10-31" {
		t.Errorf("Transform = %v", got)
	}
	fn := at(t, tpl, "Resources", "TickstreamFunction")
	want := map[string]any{
		"Type":     "AWS::Serverless::Function",
		"Metadata": map[string]any{"BuildMethod": "makefile"},
		"Properties": map[string]any{
			"CodeUri":       ".",
			"Handler":       "bootstrap",
			"Runtime":       "provided.al2023",
			"Architectures": []any{"arm64"},
			"MemorySize":    128,
			"Timeout":       map[string]any{"Ref": "StreamSeconds"},
			"ReservedConcurrentExecutions": map[string]any{"Fn::If": []any{
				"HasConcurrencyCap", map[string]any{"Ref": "MaxConcurrentStreams"}, map[string]any{"Ref": "AWS::NoValue"}}},
			"FunctionUrlConfig": map[string]any{
				"AuthType":   map[string]any{"Ref": "AuthType"},
				"InvokeMode": "RESPONSE_STREAM",
			},
			"Environment": map[string]any{"Variables": map[string]any{
				"TICKSTREAM_DEADLINE_MARGIN": map[string]any{"Ref": "DeadlineMargin"},
				"TICKSTREAM_BASE_PATH":       map[string]any{"Ref": "BasePath"},
			}},
		},
	}
	if diff := cmp.Diff(want, fn); diff != "" {
		t.Errorf("TickstreamFunction (-want +got):\n%s", diff)
	}
}

func TestTemplateParameters(t *testing.T) {
	tpl := loadTemplate(t)
	params := at(t, tpl, "Parameters").(map[string]any)
	for name, want := range map[string]map[string]any{
		"AuthType":             {"Type": "String", "Default": "NONE", "AllowedValues": []any{"NONE", "AWS_IAM"}},
		"MaxConcurrentStreams": {"Type": "Number", "Default": 5, "MinValue": -1},
		"StreamSeconds":        {"Type": "Number", "Default": 900, "MinValue": 10, "MaxValue": 900},
		"EnableRestApi":        {"Type": "String", "Default": "false", "AllowedValues": []any{"true", "false"}},
		"EnableHttpApi":        {"Type": "String", "Default": "false", "AllowedValues": []any{"true", "false"}},
		"DeadlineMargin":       {"Type": "String", "Default": "2s", "AllowedPattern": "^[0-9]+(ms|s)$"},
		"BasePath":             {"Type": "String", "Default": "", "AllowedPattern": "^(/?[A-Za-z0-9._~-]+)*/?$"},
	} {
		got := params[name].(map[string]any)
		if got["Description"] == nil {
			t.Errorf("parameter %s has no Description", name)
		}
		got = maps(got, "Description")
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("parameter %s (-want +got):\n%s", name, diff)
		}
	}
	wantConditions := map[string]any{
		"IsPublic":          map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "AuthType"}, "NONE"}},
		"HasConcurrencyCap": map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "MaxConcurrentStreams"}, -1}}}},
		"CreateRestApi":     map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "EnableRestApi"}, "true"}},
		"CreateHttpApi":     map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "EnableHttpApi"}, "true"}},
	}
	if diff := cmp.Diff(wantConditions, at(t, tpl, "Conditions")); diff != "" {
		t.Errorf("Conditions (-want +got):\n%s", diff)
	}
}

// maps returns a copy of m without the keys in drop.
func maps(m map[string]any, drop ...string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for _, k := range drop {
		delete(out, k)
	}
	return out
}

func TestTemplatePermissionsAndOutputs(t *testing.T) {
	tpl := loadTemplate(t)
	if diff := cmp.Diff(map[string]any{
		"Type":      "AWS::Lambda::Permission",
		"Condition": "IsPublic",
		"Properties": map[string]any{
			"FunctionName":          map[string]any{"Ref": "TickstreamFunction"},
			"Action":                "lambda:InvokeFunction",
			"Principal":             "*",
			"InvokedViaFunctionUrl": true,
		},
	}, at(t, tpl, "Resources", "PublicUrlInvokePermission")); diff != "" {
		t.Errorf("PublicUrlInvokePermission (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"Fn::GetAtt": []any{"TickstreamFunctionUrl", "FunctionUrl"}},
		at(t, tpl, "Outputs", "FunctionUrl", "Value")); diff != "" {
		t.Errorf("FunctionUrl output (-want +got):\n%s", diff)
	}
}

// TestTemplateRestApi checks the optional REST API: both methods integrate
// with the function's response-streaming invocation path in STREAM mode.
func TestTemplateRestApi(t *testing.T) {
	tpl := loadTemplate(t)
	resources := at(t, tpl, "Resources").(map[string]any)
	var restResources []string
	for name, r := range resources {
		if at(t, r, "Type").(string) != "AWS::Serverless::Function" && strings.HasPrefix(name, "RestApi") {
			restResources = append(restResources, name)
			if c, _ := r.(map[string]any)["Condition"].(string); c != "CreateRestApi" {
				t.Errorf("%s has condition %q, want CreateRestApi: the REST API is off by default", name, c)
			}
		}
	}
	if len(restResources) != 7 {
		t.Errorf("REST API resources %v, want 7", restResources)
	}
	wantIntegration := map[string]any{
		"Type":                  "AWS_PROXY",
		"IntegrationHttpMethod": "POST",
		"Uri": map[string]any{"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2021-11-15/functions/" +
			"${TickstreamFunction.Arn}/response-streaming-invocations"},
		"ResponseTransferMode": "STREAM",
		"TimeoutInMillis":      900000,
	}
	for _, method := range []string{"RestApiRootMethod", "RestApiProxyMethod"} {
		if diff := cmp.Diff(wantIntegration, at(t, tpl, "Resources", method, "Properties", "Integration")); diff != "" {
			t.Errorf("%s integration (-want +got):\n%s", method, diff)
		}
	}
	if got := at(t, tpl, "Resources", "RestApiProxyResource", "Properties", "PathPart"); got != "{proxy+}" {
		t.Errorf("proxy resource PathPart = %v", got)
	}
	if got := at(t, tpl, "Resources", "RestApiStage", "Properties", "StageName"); got != "prod" {
		t.Errorf("stage = %v, want prod", got)
	}
}

// TestTemplateHttpApi checks the optional HTTP API: quick-created in front
// of the function, off by default, with its invoke permission and output.
func TestTemplateHttpApi(t *testing.T) {
	tpl := loadTemplate(t)
	want := map[string]any{
		"HttpApi": map[string]any{
			"Type":      "AWS::ApiGatewayV2::Api",
			"Condition": "CreateHttpApi",
			"Properties": map[string]any{
				"Name":         map[string]any{"Fn::Sub": "${AWS::StackName}-tickstream-http"},
				"ProtocolType": "HTTP",
				"Target":       map[string]any{"Fn::GetAtt": []any{"TickstreamFunction", "Arn"}},
			},
		},
		"HttpApiInvokePermission": map[string]any{
			"Type":      "AWS::Lambda::Permission",
			"Condition": "CreateHttpApi",
			"Properties": map[string]any{
				"FunctionName": map[string]any{"Ref": "TickstreamFunction"},
				"Action":       "lambda:InvokeFunction",
				"Principal":    "apigateway.amazonaws.com",
				"SourceArn":    map[string]any{"Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*"},
			},
		},
	}
	for name, w := range want {
		if diff := cmp.Diff(w, at(t, tpl, "Resources", name)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	if diff := cmp.Diff(map[string]any{"Fn::GetAtt": []any{"HttpApi", "ApiEndpoint"}}, at(t, tpl, "Outputs", "HttpApiUrl", "Value")); diff != "" {
		t.Errorf("HttpApiUrl output (-want +got):\n%s", diff)
	}
}

// TestTemplateParameterPatterns: the margin and base path the template
// accepts are exactly those the function accepts.
func TestTemplateParameterPatterns(t *testing.T) {
	tpl := loadTemplate(t)
	for _, tt := range []struct {
		param, env string
		values     map[string]bool // value: accepted
	}{
		{"DeadlineMargin", "TICKSTREAM_DEADLINE_MARGIN", map[string]bool{"2s": true, "1500ms": true, "0s": true, "2": false, "1m": false, "-1s": false, "": false}},
		{"BasePath", "TICKSTREAM_BASE_PATH", map[string]bool{"": true, "/sse": true, "sse/": true, "/a/b": true, "/a b": false, "/%2F": false}},
	} {
		pattern := regexp.MustCompile(at(t, tpl, "Parameters", tt.param, "AllowedPattern").(string))
		def := at(t, tpl, "Parameters", tt.param, "Default").(string)
		if !pattern.MatchString(def) {
			t.Errorf("%s: the default %q does not match its own pattern", tt.param, def)
		}
		for v, ok := range tt.values {
			if pattern.MatchString(v) != ok {
				t.Errorf("%s: the template accepts %q: %v, want %v", tt.param, v, !ok, ok)
			}
			if ok && tt.param == "DeadlineMargin" {
				if _, err := newAdapter(func(k string) string { return map[string]string{tt.env: v}[k] }); err != nil {
					t.Errorf("%s=%q, which the template accepts: %v", tt.env, v, err)
				}
			}
		}
	}
}

// TestTemplateBuildTarget runs the Makefile target sam build runs and checks
// that it writes an arm64 Linux bootstrap into ARTIFACTS_DIR.
func TestTemplateBuildTarget(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is not installed: apt-get install make")
	}
	dir := t.TempDir()
	cmd := exec.Command("make", "-C", "..", "build-TickstreamFunction", "ARTIFACTS_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build-TickstreamFunction: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(filepath.Join(dir, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	// An ELF64 little-endian executable for machine 183 (EM_AARCH64).
	if len(bin) < 20 || string(bin[:4]) != "\x7fELF" || bin[4] != 2 || bin[18] != 183 {
		t.Errorf("bootstrap is not a 64-bit arm64 ELF binary")
	}
}

// TestTemplateBuildTargetDefault: run by hand, without ARTIFACTS_DIR, the
// target writes bootstrap inside the repository, where sam build would, not
// at the filesystem root.
func TestTemplateBuildTargetDefault(t *testing.T) {
	out, err := exec.Command("make", "-n", "-C", "..", "build-TickstreamFunction").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n build-TickstreamFunction: %v\n%s", err, out)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	want := `-o "` + filepath.Join(root, ".aws-sam", "build", "TickstreamFunction", "bootstrap") + `"`
	if !strings.Contains(string(out), want) {
		t.Errorf("make -n build-TickstreamFunction prints\n%s\nwant it to build with %s", out, want)
	}
}
