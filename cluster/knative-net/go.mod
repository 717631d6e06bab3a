module podgateway.local/knative-net

go 1.26
