package dev.moelora.cluster.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.moelora.cluster.config.RunConfig;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * adapter_config.json: PEFT's LoraConfig field names for LoRA (the method PEFT has), and for
 * Tied-LoRA and MoELoRA (which PEFT does not have) no peft_type but our own moelora_type with their
 * own settings, MoELoRA's expert rank instead of a LoRA rank.
 */
class AdapterJsonTest {
    static JsonNode json(String... settings) {
        return AdapterJson.of(RunConfig.load(null, List.of(settings)), "described", "base", null, List.of());
    }

    @Test
    void loraUsesPeftsLoraConfigFields() {
        JsonNode o = json("adapter.type=lora", "adapter.rank=4", "adapter.alpha=8", "adapter.dropout=0.1", "adapter.targets=[query,value]");
        assertEquals("LORA", o.get("peft_type").asText());
        assertEquals(4, o.get("r").asInt());
        assertEquals(8.0, o.get("lora_alpha").asDouble());
        assertEquals(0.1, o.get("lora_dropout").asDouble());
        assertEquals("[\"query\",\"value\"]", o.get("target_modules").toString());
        assertEquals("none", o.get("bias").asText());
        assertEquals("base", o.get("base_model_name_or_path").asText());
        assertFalse(o.has(AdapterJson.MOELORA_TYPE));
    }

    @Test
    void moeLoraIsNotAPeftTypeAndRecordsItsExpertRank() {
        JsonNode o = json("adapter.type=moelora", "adapter.experts=4", "adapter.top-k=2", "adapter.expert-rank=3", "adapter.rank=8");
        assertFalse(o.has("peft_type"), o.toString());
        assertEquals("MOELORA", o.get(AdapterJson.MOELORA_TYPE).asText());
        assertEquals(3, o.get("expert_rank").asInt());
        assertEquals(4, o.get("experts").asInt());
        assertEquals(2, o.get("top_k").asInt());
        assertFalse(o.has("r"), "no LoRA rank: " + o);
        assertFalse(o.has("lora_alpha"), o.toString());
    }

    @Test
    void tiedLoraIsNotAPeftTypeAndRecordsItsPreset() {
        JsonNode o = json("adapter.type=tied-lora", "adapter.preset=tl5", "adapter.rank=6");
        assertFalse(o.has("peft_type"), o.toString());
        assertEquals("TIED_LORA", o.get(AdapterJson.MOELORA_TYPE).asText());
        assertEquals("tl5", o.get("preset").asText());
        assertEquals(6, o.get("r").asInt());
    }

    @Test
    void regexTargetsBecomeOnePeftPatternThatMatchesTheSameModules() {
        assertEquals("encoder\\.layer\\.0\\..*", json("adapter.targets=[\"re:encoder\\\\.layer\\\\.0\\\\..*\"]").get("target_modules").asText());
        String mixed = json("adapter.targets=[query, \"re:.*\\\\.dense\"]").get("target_modules").asText();
        Pattern p = Pattern.compile(mixed);
        // PEFT matches a string target against the whole module name; suffix entries keep PEFT's suffix rule
        assertTrue(p.matcher("encoder.layer.3.attention.self.query").matches(), mixed);
        assertTrue(p.matcher("query").matches(), mixed);
        assertTrue(p.matcher("encoder.layer.3.output.dense").matches(), mixed);
        assertFalse(p.matcher("encoder.layer.3.attention.self.queryx").matches(), mixed);
        assertFalse(p.matcher("encoder.layer.3.attention.self.key").matches(), mixed);
    }
}
