//! A simulated Kubernetes API server with Kamaji behaviour, for tests and the
//! local demo. It is built out together with workspace provisioning.
