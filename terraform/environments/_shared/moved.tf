# The environments used to compose the modules themselves; since
# terraform/stack holds the composition, their resources live under
# module.stack. These blocks move the state in place on the first plan after
# the change (no destroy/create); drop them once every environment has
# applied it. Same file in every environment (a test checks it).

moved {
  from = module.monitoring
  to   = module.stack.module.monitoring
}

moved {
  from = module.vpc
  to   = module.stack.module.vpc
}

moved {
  from = module.messaging
  to   = module.stack.module.messaging
}

moved {
  from = module.security
  to   = module.stack.module.security
}

moved {
  from = module.ecs
  to   = module.stack.module.ecs
}

moved {
  from = module.database
  to   = module.stack.module.database
}

moved {
  from = module.services
  to   = module.stack.module.services
}
