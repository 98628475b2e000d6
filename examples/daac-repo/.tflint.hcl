# TFLint for this repository (ci/check.sh): the terraform ruleset's recommended rules, among
# them terraform_module_pinned_source (a module from git must name a tag or commit).
config {
  call_module_type = "none"
}

plugin "terraform" {
  enabled = true
  preset  = "recommended"
}

rule "terraform_module_pinned_source" {
  enabled = true
  style   = "semver" # git sources: ?ref=vX.Y.Z, not a branch
}
