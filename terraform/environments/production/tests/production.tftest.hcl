# Production as a whole under the mocked AWS provider (offline): every module
# wired by terraform/stack plans and applies against the provider's schema
# and validation (unknown for_each keys, bad ARNs, cross-variable checks
# show here). Assertions reach the root's outputs only; the modules' own
# tests (terraform/modules/*/tests) assert their resources.
# Run: terraform test (docs/deploy.md, "Checks").

mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  image_tag       = "0123456789abcdef0123456789abcdef01234567"
  certificate_arn = "arn:aws:acm:ap-northeast-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
}

run "production" {
  assert {
    condition     = output.cluster_name == "workspaced-production" && output.dashboard_name == "workspaced-production"
    error_message = "Production's names carry its prefix."
  }

  assert {
    condition     = keys(output.command_queue_urls) == ["workspace_released", "workspace_requested"] && length(output.dead_letter_queue_arns) == 3
    error_message = "Two command queues and three DLQs (one per queue)."
  }

  assert {
    condition     = startswith(output.api_url, "https://")
    error_message = "The API is HTTPS only."
  }

  assert {
    condition     = output.workspace_task_definition_family == "workspaced-production-workspace-agent"
    error_message = "The workspace task family is the one the backend's IAM policy names."
  }
}
