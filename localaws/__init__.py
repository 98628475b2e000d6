"""The local AWS: moto 5.2.5 on loopback with the project's listed patches
(localaws.patches), and a runtime (localaws.runtime) that runs what Terraform
deployed there the way AWS runs it."""
