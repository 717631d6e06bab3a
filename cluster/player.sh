# Knative's CloudEvents Player (deploy/cloudevents-player.yaml) on the local cluster, sourced by cluster.sh after
# serving.sh (uses its log/die/vendor_copy/tree_key and images.sh). Built from a copy of
# ../shared/vendor/cloudevents-player (Quarkus 2.16 + a React frontend): the frontend with npm (the pom's
# frontend-maven-plugin would download Node 14), the application with Maven (Maven Central), one patch to the copy
# (BrokerTokenHeaders.java: the Broker's OIDC token on its sends). Its image: a Debian root with the JRE. See
# cluster/README.md "The CloudEvents Player".
PLAYER_SRC=${PGW_PLAYER_SRC:-$VENDOR/cloudevents-player}
PLAYER_BIN_DIR=""

# it runs as a Knative Service: with Serving only (PGW_PLAYER=0 leaves it out)
player_enabled() { [ "${PGW_PLAYER:-1}" != 0 ] && serving_enabled && [ -f "$PLAYER_SRC/pom.xml" ]; }

player_enabled && IMAGES+=(cloudevents-player)

player_bin_dirs() {
	PLAYER_BIN_DIR=$BIN_ROOT/cloudevents-player-$(tree_key "$(declare -f player_build player_patch)" \
		"$PLAYER_SRC" "$CLUSTER_SRC/player")
}

player_built() { [ -f "$PLAYER_BIN_DIR/.complete" ]; }

player_prereqs() {
	player_enabled || return 0
	local missing=()
	command -v javac >/dev/null || missing+=(openjdk-17-jdk-headless)
	command -v mvn >/dev/null || missing+=(maven)
	command -v npm >/dev/null || die "npm is required to build the CloudEvents Player's frontend"
	((${#missing[@]} == 0)) && return 0
	log "installing missing packages for the CloudEvents Player: ${missing[*]}"
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# The one change to upstream's code, in the copy: its REST client to the Broker gets our ClientHeadersFactory
# (cluster/player/BrokerTokenHeaders.java), which adds the token file's bearer token.
player_patch() { # src
	local svc=$1/src/main/java/com/github/ruromero/cloudeventsplayer/service
	cp "$CLUSTER_SRC/player/BrokerTokenHeaders.java" "$svc/"
	sed -i 's/^@RegisterClientHeaders$/@RegisterClientHeaders(BrokerTokenHeaders.class)/' "$svc/BrokerService.java"
	grep -q '^@RegisterClientHeaders(BrokerTokenHeaders.class)$' "$svc/BrokerService.java" ||
		die "cloudevents-player: BrokerService.java no longer has the @RegisterClientHeaders the patch replaces"
}

# frontend/build is what the pom's copy-resources puts into the jar's META-INF/resources (Quarkus' static files);
# -Dfrontend activates upstream's skipFrontend profile (no Node download, no npm run by Maven)
player_build() {
	player_built && return 0
	local src tmp=$PLAYER_BIN_DIR.tmp.$$ t0=$SECONDS
	log "building the CloudEvents Player (npm + Maven; one-time, cached in $PLAYER_BIN_DIR)"
	src=$(vendor_copy cloudevents-player)
	player_patch "$src"
	# webpack 4 (react-scripts 4) hashes with MD4, which OpenSSL 3 (Node >= 17) only has in its legacy provider
	(cd "$src/frontend" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error &&
		NODE_OPTIONS=--openssl-legacy-provider node_modules/.bin/react-scripts build) >&2
	(cd "$src" && mvn -B -q -Dfrontend -DskipTests package) >&2
	[ -f "$src/target/quarkus-app/quarkus-run.jar" ] && [ -f "$src/target/classes/META-INF/resources/index.html" ] ||
		die "cloudevents-player: no quarkus-run.jar with the frontend in $src/target"
	rm -rf "$tmp"
	cp -R "$src/target/quarkus-app" "$tmp"
	touch "$tmp/.complete"
	rm -rf "$PLAYER_BIN_DIR" "$src"
	mv "$tmp" "$PLAYER_BIN_DIR"
	log "built the CloudEvents Player in $((SECONDS - t0))s"
}

# The image: a Debian root with the JRE (and its CA store), the Quarkus application in /deployments as upstream's
# Dockerfile.jvm lays it out; runs as 65532 on a read-only root (Vert.x's file cache goes to the /tmp emptyDir)
images_root_cloudevents_player() { # root
	local r=$1
	images_debootstrap "$r" openjdk-17-jre-headless
	images_slim "$r"
	printf '%s\n' 'nonroot:x:65532:65532:nonroot:/tmp:/usr/sbin/nologin' >>"$r/etc/passwd"
	printf '%s\n' 'nonroot:x:65532:' >>"$r/etc/group"
	mkdir -p "$r/deployments"
	cp -R "$PLAYER_BIN_DIR/." "$r/deployments/"
	rm -f "$r/deployments/.complete"
	chmod -R a+rX "$r/deployments"
}
