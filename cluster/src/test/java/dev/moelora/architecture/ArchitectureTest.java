package dev.moelora.architecture;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.Architectures.layeredArchitecture;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The allowed dependencies between the modules and packages (DESIGN.md, "Layout"), checked on
 * the compiled main classes of every module: {@code model} and {@code proto} depend on nothing of
 * ours and {@code model} imports no Pekko or Aeron; {@code experts} and {@code router} do not know
 * each other or {@code cluster}; inside {@code cluster} the jobs sit beside each other under what
 * they share, and only the command line chooses among them; no package cycle anywhere.
 */
class ArchitectureTest {
    static JavaClasses classes;

    @BeforeAll
    static void importMainClasses() {
        // main classes only: not the test classes of this module, nor those another module's test-jar brings
        ImportOption noTestJars = location -> !location.contains("-tests.jar") && !location.contains("/test-classes/");
        classes = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS).withImportOption(noTestJars)
                .importPackages("dev.moelora");
        for (String module : new String[] {"proto.frame", "model.moelora", "experts", "router", "cluster.runtime"}) {
            assertTrue(classes.containPackage("dev.moelora." + module), "the rules see the classes of dev.moelora." + module);
        }
    }

    @Test
    void theModelImportsNoActorsNetworkOrOtherModuleOfOurs() {
        noClasses().that().resideInAPackage("dev.moelora.model..")
                .should().dependOnClassesThat().resideInAnyPackage("org.apache.pekko..", "io.aeron..", "org.agrona..",
                        "dev.moelora.proto..", "dev.moelora.experts..", "dev.moelora.router..", "dev.moelora.cluster..")
                .check(classes);
    }

    @Test
    void theWireDependsOnNoOtherModuleOfOursAndNoActors() {
        noClasses().that().resideInAPackage("dev.moelora.proto..")
                .should().dependOnClassesThat().resideInAnyPackage("org.apache.pekko..", "dev.moelora.model..", "dev.moelora.experts..",
                        "dev.moelora.router..", "dev.moelora.cluster..")
                .check(classes);
    }

    @Test
    void expertsAndRoutersDoNotKnowEachOtherOrTheCluster() {
        noClasses().that().resideInAPackage("dev.moelora.experts..")
                .should().dependOnClassesThat().resideInAnyPackage("dev.moelora.router..", "dev.moelora.cluster..").check(classes);
        noClasses().that().resideInAPackage("dev.moelora.router..")
                .should().dependOnClassesThat().resideInAnyPackage("dev.moelora.experts..", "dev.moelora.cluster..").check(classes);
    }

    @Test
    void clusterPackagesDependOnlyDownwards() {
        layeredArchitecture().consideringOnlyDependenciesInLayers()
                .layer("main").definedBy("dev.moelora.cluster")
                .layer("cli").definedBy("dev.moelora.cluster.cli..")
                .layer("bench").definedBy("dev.moelora.cluster.bench..")
                .layer("chaos").definedBy("dev.moelora.cluster.chaos..")
                .layer("dashboard").definedBy("dev.moelora.cluster.dashboard..")
                .layer("experiment").definedBy("dev.moelora.cluster.experiment..")
                .layer("single").definedBy("dev.moelora.cluster.single..")
                .layer("runtime").definedBy("dev.moelora.cluster.runtime..")
                .layer("checkpoint").definedBy("dev.moelora.cluster.checkpoint..")
                .layer("job").definedBy("dev.moelora.cluster.job..")
                .layer("tensorboard").definedBy("dev.moelora.cluster.tensorboard..")
                .layer("observe").definedBy("dev.moelora.cluster.observe..")
                .layer("setup").definedBy("dev.moelora.cluster.setup..")
                .layer("hub").definedBy("dev.moelora.cluster.hub..")
                .layer("config").definedBy("dev.moelora.cluster.config..")
                .whereLayer("main").mayNotBeAccessedByAnyLayer()
                .whereLayer("cli").mayOnlyBeAccessedByLayers("main")
                .whereLayer("bench").mayOnlyBeAccessedByLayers("cli")
                .whereLayer("chaos").mayOnlyBeAccessedByLayers("cli")
                .whereLayer("dashboard").mayOnlyBeAccessedByLayers("cli", "bench") // bench draws its plots with the dashboard's Charts
                .whereLayer("experiment").mayOnlyBeAccessedByLayers("cli")
                .whereLayer("single").mayOnlyBeAccessedByLayers("cli", "bench", "chaos")
                .whereLayer("runtime").mayOnlyBeAccessedByLayers("cli", "bench", "chaos")
                .whereLayer("checkpoint").mayOnlyBeAccessedByLayers("cli", "bench", "single", "runtime")
                .whereLayer("job").mayOnlyBeAccessedByLayers("cli", "bench", "experiment", "single", "runtime", "checkpoint", "chaos")
                .whereLayer("tensorboard").mayOnlyBeAccessedByLayers("cli", "bench", "single", "runtime", "job")
                .whereLayer("observe").mayOnlyBeAccessedByLayers("cli", "bench", "dashboard", "single", "runtime", "checkpoint", "job", "tensorboard")
                .whereLayer("setup").mayOnlyBeAccessedByLayers("cli", "bench", "single", "runtime")
                .whereLayer("hub").mayOnlyBeAccessedByLayers("cli", "setup")
                .whereLayer("config").mayOnlyBeAccessedByLayers("cli", "bench", "dashboard", "experiment", "single", "runtime", "checkpoint", "job", "setup", "chaos")
                .check(classes);
    }

    @Test
    void noPackageDependsOnItselfThroughAnother() {
        slices().matching("dev.moelora.(**)").should().beFreeOfCycles().check(classes);
    }
}
