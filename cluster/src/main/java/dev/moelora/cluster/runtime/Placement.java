package dev.moelora.cluster.runtime;

import dev.moelora.proto.control.DataEndpoint;
import dev.moelora.proto.control.ExpertPlacement;
import java.util.ArrayList;
import java.util.List;

/**
 * Which node and device slot hosts each expert: from the config's {@code runtime.placement}
 * ("expert=node:device" entries, every expert exactly once) or, by default, round-robin over the
 * nodes with each node's experts spread over its device slots. Pure: it talks to nobody.
 */
public final class Placement {
    /** An expert node as the coordinator knows it. */
    public record Node(String name, DataEndpoint endpoint, int devices) {}

    private Placement() {}

    public static List<ExpertPlacement> assign(int experts, List<Node> nodes, List<String> spec) {
        if (nodes.isEmpty()) throw new IllegalArgumentException("no expert node to place " + experts + " experts on");
        ExpertPlacement[] out = new ExpertPlacement[experts];
        if (spec.isEmpty()) {
            int[] count = new int[nodes.size()];
            for (int e = 0; e < experts; e++) {
                int n = e % nodes.size();
                int slots = nodes.get(n).devices() > 0 ? nodes.get(n).devices() : Integer.MAX_VALUE;
                out[e] = placement(e, nodes.get(n), count[n]++ % slots);
            }
        } else {
            for (String entry : spec) {
                String[] kv = entry.split("=");
                String[] nd = kv.length == 2 ? kv[1].split(":") : new String[0];
                if (nd.length != 2) throw new IllegalArgumentException("runtime.placement entry '" + entry + "' is not expert=node:device");
                int e = parse(entry, kv[0]), n = parse(entry, nd[0]), d = parse(entry, nd[1]);
                if (e < 0 || e >= experts) throw new IllegalArgumentException("runtime.placement '" + entry + "': expert outside [0, " + experts + ")");
                if (n < 0 || n >= nodes.size()) throw new IllegalArgumentException("runtime.placement '" + entry + "': node outside [0, " + nodes.size() + ")");
                if (nodes.get(n).devices() > 0 && (d < 0 || d >= nodes.get(n).devices())) {
                    throw new IllegalArgumentException("runtime.placement '" + entry + "': node " + n + " has " + nodes.get(n).devices() + " device slots");
                }
                if (out[e] != null) throw new IllegalArgumentException("runtime.placement places expert " + e + " twice");
                out[e] = placement(e, nodes.get(n), d);
            }
            for (int e = 0; e < experts; e++) if (out[e] == null) throw new IllegalArgumentException("runtime.placement does not place expert " + e);
        }
        return List.of(out);
    }

    private static ExpertPlacement placement(int e, Node node, int device) {
        return ExpertPlacement.newBuilder().setExpert(e).setNode(node.name()).setDevice(device).setEndpoint(node.endpoint()).build();
    }

    private static int parse(String entry, String s) {
        try {
            return Integer.parseInt(s.trim());
        } catch (NumberFormatException ex) {
            throw new IllegalArgumentException("runtime.placement entry '" + entry + "': '" + s + "' is not a number");
        }
    }

    /** One line per node: "node: experts [0, 2] on cpu slots [0, 1]". */
    public static List<String> describe(List<ExpertPlacement> placement) {
        java.util.Map<String, List<String>> byNode = new java.util.LinkedHashMap<>();
        for (ExpertPlacement p : placement) byNode.computeIfAbsent(p.getNode(), k -> new ArrayList<>()).add(p.getExpert() + "@" + p.getDevice());
        List<String> out = new ArrayList<>();
        byNode.forEach((node, list) -> out.add(node + ": expert@slot " + list));
        return out;
    }
}
