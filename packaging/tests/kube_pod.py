#!/usr/bin/env python3
"""Turn the Deployment or Job that charts/shim renders into the Pod that
`podman kube play` (podman 4.3) can run, with the workarounds that version
needs. Only for the test; the chart itself is unchanged.

  kube_pod.py RENDERED.yaml POD_NAME > pod.yaml

- kind Pod named POD_NAME, with the workload's pod template;
- restartPolicy Always becomes OnFailure (with Always, podman 4.3 keeps
  restarting the init container);
- native sidecars (init containers with restartPolicy: Always) move into
  containers: podman ignores restartPolicy on init containers and would wait
  for them to finish before starting the app.
podman ignores terminationGracePeriodSeconds and terminationMessagePath, so
the test stops the pod with `podman pod stop -t`.
"""
import sys

import yaml

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
(w,) = [d for d in docs if d.get("kind") in ("Deployment", "Job")]
tpl = w["spec"]["template"]
spec = tpl["spec"]
if spec.get("restartPolicy", "Always") == "Always":
    spec["restartPolicy"] = "OnFailure"
init, moved = [], []
for c in spec.get("initContainers", []):
    if c.pop("restartPolicy", None) == "Always":
        moved.append(c)
    else:
        init.append(c)
spec["initContainers"] = init
spec["containers"] = spec["containers"] + moved
pod = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": sys.argv[2], "labels": tpl["metadata"].get("labels", {})},
    "spec": spec,
}
yaml.safe_dump(pod, sys.stdout, sort_keys=False)
