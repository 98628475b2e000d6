# TFLint (tools/tflint.sh): the bundled terraform ruleset, every rule, as terraform-aws-modules use it.
# The AWS ruleset plugin cannot be had here: see tools/tflint.sh.
config {
  call_module_type = "local"
}

plugin "terraform" {
  enabled = true
  preset  = "all"
}
