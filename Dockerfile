# Image of the podgateway client provisioner: one executable on an empty base.
#
# Build the inputs first (offline):   npm run build      -> dist/podgateway-provisioner, dist/rootfs/
# then:  docker build -t podgateway-provisioner .
#   or:  buildah bud --isolation chroot -t podgateway-provisioner .
# (scripts/publish-local.sh does both steps and pushes to the local registry.)
#
# There is no base image to pull. dist/rootfs/ carries exactly what the
# executable needs at run time besides itself, as staged by scripts/build.sh:
# the glibc loader and the shared libraries `ldd` lists, the CA bundle at
# /etc/ssl/certs/ca-certificates.crt, and /etc/passwd + /etc/group naming 65532.
# The process writes no files: no /tmp, so readOnlyRootFilesystem works as is.
FROM scratch

ARG VERSION=dev
LABEL org.opencontainers.image.title="podgateway-provisioner" \
      org.opencontainers.image.description="Turns io.podgateway.client.pending CloudEvents into client pods routed by pod-gateway" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"

COPY dist/rootfs/ /
COPY dist/podgateway-provisioner /podgateway-provisioner

USER 65532:65532
ENV PORT=8080
EXPOSE 8080
ENTRYPOINT ["/podgateway-provisioner"]
