# Realistic computed values for the mocked AWS provider of the environments'
# terraform tests (mock_provider "aws" { source = ... }). The provider still
# validates what a resource receives, so ARNs must look like ARNs and IDs
# like IDs; one value per type is enough where nothing compares them.

mock_data "aws_caller_identity" {
  defaults = {
    account_id = "123456789012"
    arn        = "arn:aws:iam::123456789012:user/test"
    user_id    = "AIDAEXAMPLE"
  }
}

mock_data "aws_partition" {
  defaults = {
    partition  = "aws"
    dns_suffix = "amazonaws.com"
  }
}

mock_data "aws_iam_policy_document" {
  defaults = {
    json = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"sts:GetCallerIdentity\",\"Resource\":\"*\"}]}"
  }
}

mock_data "aws_ami" {
  defaults = {
    id = "ami-0a1b2c3d4e5f60000"
  }
}

mock_data "aws_secretsmanager_random_password" {
  defaults = {
    random_password = "mockmockmockmockmockmockmockmockmockmockmockmockmockmockmockmock"
  }
}

mock_resource "aws_kms_key" {
  defaults = {
    arn    = "arn:aws:kms:ap-northeast-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    key_id = "00000000-0000-0000-0000-000000000000"
  }
}

mock_resource "aws_iam_role" {
  defaults = {
    arn = "arn:aws:iam::123456789012:role/mock"
  }
}

mock_resource "aws_iam_instance_profile" {
  defaults = {
    arn = "arn:aws:iam::123456789012:instance-profile/mock"
  }
}

mock_resource "aws_sqs_queue" {
  defaults = {
    arn = "arn:aws:sqs:ap-northeast-1:123456789012:mock"
    id  = "https://sqs.ap-northeast-1.amazonaws.com/123456789012/mock"
    url = "https://sqs.ap-northeast-1.amazonaws.com/123456789012/mock"
  }
}

mock_resource "aws_cloudwatch_event_rule" {
  defaults = {
    arn = "arn:aws:events:ap-northeast-1:123456789012:rule/mock"
  }
}

mock_resource "aws_cloudwatch_log_group" {
  defaults = {
    arn = "arn:aws:logs:ap-northeast-1:123456789012:log-group:mock"
  }
}

mock_resource "aws_sns_topic" {
  defaults = {
    arn = "arn:aws:sns:ap-northeast-1:123456789012:mock"
  }
}

mock_resource "aws_s3_bucket" {
  defaults = {
    arn = "arn:aws:s3:::mock"
  }
}

mock_resource "aws_ssm_parameter" {
  defaults = {
    arn = "arn:aws:ssm:ap-northeast-1:123456789012:parameter/mock"
  }
}

mock_resource "aws_secretsmanager_secret" {
  defaults = {
    arn = "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:mock-AbCdEf"
  }
}

mock_resource "aws_launch_template" {
  defaults = {
    id             = "lt-0a1b2c3d4e5f60000"
    arn            = "arn:aws:ec2:ap-northeast-1:123456789012:launch-template/lt-0a1b2c3d4e5f60000"
    latest_version = 1
  }
}

mock_resource "aws_autoscaling_group" {
  defaults = {
    arn = "arn:aws:autoscaling:ap-northeast-1:123456789012:autoScalingGroup:00000000-0000-0000-0000-000000000000:autoScalingGroupName/mock"
  }
}

mock_resource "aws_ecs_cluster" {
  defaults = {
    arn = "arn:aws:ecs:ap-northeast-1:123456789012:cluster/mock"
  }
}

mock_resource "aws_ecs_task_definition" {
  defaults = {
    arn = "arn:aws:ecs:ap-northeast-1:123456789012:task-definition/mock:1"
  }
}

mock_resource "aws_lb" {
  defaults = {
    arn        = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:loadbalancer/app/mock/0123456789abcdef"
    arn_suffix = "app/mock/0123456789abcdef"
    dns_name   = "mock-123456789.ap-northeast-1.elb.amazonaws.com"
    zone_id    = "Z14GRHDCWA56QT"
  }
}

mock_resource "aws_lb_target_group" {
  defaults = {
    arn        = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/mock/0123456789abcdef"
    arn_suffix = "targetgroup/mock/0123456789abcdef"
  }
}

mock_resource "aws_lb_listener" {
  defaults = {
    arn = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:listener/app/mock/0123456789abcdef/0123456789abcdef"
  }
}

mock_resource "aws_vpc" {
  defaults = {
    id  = "vpc-0a1b2c3d4e5f60000"
    arn = "arn:aws:ec2:ap-northeast-1:123456789012:vpc/vpc-0a1b2c3d4e5f60000"
  }
}

mock_resource "aws_security_group" {
  defaults = {
    id  = "sg-0a1b2c3d4e5f60000"
    arn = "arn:aws:ec2:ap-northeast-1:123456789012:security-group/sg-0a1b2c3d4e5f60000"
  }
}

mock_resource "aws_subnet" {
  defaults = {
    id  = "subnet-0a1b2c3d4e5f60000"
    arn = "arn:aws:ec2:ap-northeast-1:123456789012:subnet/subnet-0a1b2c3d4e5f60000"
  }
}

mock_resource "aws_vpc_endpoint" {
  defaults = {
    id             = "vpce-0a1b2c3d4e5f60000"
    prefix_list_id = "pl-61a54008"
  }
}
