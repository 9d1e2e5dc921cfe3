package httpfield

import "testing"

func TestValidName(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
	}{
		{"Content-Type", true},
		{"X-Ratelimit-Remaining-Tokens", true},
		{"!#$%&'*+-.^_`|~09az", true},
		{"", false},
		{"Bad Name", false},
		{"Bad:Name", false},
		{"Bad\r\nName", false},
		{"Bad\x7f", false},
		{"Bad(Name)", false},
		{"Bäd", false},
	}
	for _, c := range cases {
		if got := ValidName(c.name); got != c.ok {
			t.Errorf("ValidName(%q) = %v, want %v", c.name, got, c.ok)
		}
	}
}
