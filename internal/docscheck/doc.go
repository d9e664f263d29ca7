// Package docscheck holds the tests that keep docs/ in step with the code:
// a Go identifier written in backticks in a document must exist.
package docscheck
