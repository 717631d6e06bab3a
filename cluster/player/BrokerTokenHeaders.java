package com.github.ruromero.cloudeventsplayer.service;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

import javax.ws.rs.core.MultivaluedHashMap;
import javax.ws.rs.core.MultivaluedMap;

import org.eclipse.microprofile.rest.client.ext.ClientHeadersFactory;

/**
 * Not upstream's: cluster/player.sh adds this file to its copy of the player and names it in BrokerService's
 * {@code @RegisterClientHeaders}. With Knative Eventing's OIDC authentication on, the Broker's ingress answers 401
 * to a send without a token for its audience; the player sends none. When BROKER_TOKEN_FILE is set (a projected
 * ServiceAccount token with the Broker's audience, which the kubelet refreshes), every send carries it as a bearer
 * token, read afresh each time.
 */
public class BrokerTokenHeaders implements ClientHeadersFactory {

    @Override
    public MultivaluedMap<String, String> update(MultivaluedMap<String, String> incoming,
            MultivaluedMap<String, String> outgoing) {
        MultivaluedMap<String, String> headers = new MultivaluedHashMap<>();
        String file = System.getenv("BROKER_TOKEN_FILE");
        if (file != null && !file.isEmpty()) {
            try {
                headers.putSingle("Authorization", "Bearer " + Files.readString(Path.of(file)).trim());
            } catch (IOException e) {
                throw new UncheckedIOException("BROKER_TOKEN_FILE " + file, e);
            }
        }
        return headers;
    }
}
