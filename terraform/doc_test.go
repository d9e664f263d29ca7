// Package terraform_test checks the Terraform tree without the terraform CLI:
// formatting and parsing with hashicorp/hcl, module interfaces, and the JSON
// templates the task definition and the EventBridge rule are rendered from.
package terraform_test
