package domain

import (
	"fmt"
	"regexp"
	"strings"
)

// Branding is how the shop shows itself on its checkout (issue #19):
// DisplayName instead of the gateway's name, a logo (https), a colour
// (#rrggbb, kept in lower case) and where customers return after paying
// when the invoice names no redirect_url. "" is not set.
type Branding struct {
	DisplayName        string `json:"display_name,omitempty"`
	LogoURL            string `json:"logo_url,omitempty"`
	BrandColor         string `json:"brand_color,omitempty"`
	DefaultRedirectURL string `json:"default_redirect_url,omitempty"`
}

var brandColorRE = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// BrandingPatch holds the branding fields a PATCH sets; nil leaves a field
// as it is, a pointer to "" clears it.
type BrandingPatch struct {
	DisplayName        *string
	LogoURL            *string
	BrandColor         *string
	DefaultRedirectURL *string
}

// apply returns b with the patch applied and validated. Errors: ErrValidation.
func (p BrandingPatch) apply(b Branding) (Branding, error) {
	if p.DisplayName != nil {
		if err := ValidateText("display_name", *p.DisplayName, maxNameLen); err != nil {
			return b, err
		}
		b.DisplayName = *p.DisplayName
	}
	if p.LogoURL != nil {
		if err := ValidateRedirectURL("logo_url", *p.LogoURL); err != nil {
			return b, err
		}
		b.LogoURL = *p.LogoURL
	}
	if p.BrandColor != nil {
		if c := *p.BrandColor; c != "" && !brandColorRE.MatchString(c) {
			return b, fmt.Errorf("%w: brand_color must be a colour as #rrggbb (six hexadecimal digits)", ErrValidation)
		}
		b.BrandColor = strings.ToLower(*p.BrandColor)
	}
	if p.DefaultRedirectURL != nil {
		if err := ValidateRedirectURL("default_redirect_url", *p.DefaultRedirectURL); err != nil {
			return b, err
		}
		b.DefaultRedirectURL = *p.DefaultRedirectURL
	}
	return b, nil
}
