"""WorkerConfig and processor-count validation, with the messages docs/design.md keeps."""

from __future__ import annotations

import dataclasses

import pytest

from microscheduler import ConfigError, TaskExecutor, WorkerConfig


class TestWorkerCounts:
    @pytest.mark.parametrize(("ui", "background"), [(0, 0), (-1, 0), (0, -3), (-2, -2)])
    def test_no_workers(self, ui: int, background: int) -> None:
        """A total of zero or fewer workers is refused."""
        with pytest.raises(ConfigError, match="^total workers cannot be zero$"):
            WorkerConfig(ui_workers=ui, background_workers=background)

    @pytest.mark.parametrize(("ui", "background"), [(2, -1), (-1, 2)])
    def test_negative_count_with_total_one(self, ui: int, background: int) -> None:
        """A total of one made with a negative count is refused."""
        with pytest.raises(ConfigError, match="^worker counts cannot be negative$"):
            WorkerConfig(ui_workers=ui, background_workers=background)

    def test_multi_worker_needs_ui_workers(self) -> None:
        """More than one worker with no UI worker is refused, naming the value."""
        with pytest.raises(
            ConfigError, match=r"^ui_workers must be > 0 when total workers > 1, got -1$"
        ):
            WorkerConfig(ui_workers=-1, background_workers=3)
        with pytest.raises(ConfigError, match=r"got 0$"):
            WorkerConfig(ui_workers=0, background_workers=2)

    def test_multi_worker_needs_background_workers(self) -> None:
        """More than one worker with no background worker is refused, naming the value."""
        with pytest.raises(
            ConfigError, match=r"^background_workers must be > 0 when total workers > 1, got 0$"
        ):
            WorkerConfig(ui_workers=2, background_workers=0)

    @pytest.mark.parametrize(("ui", "background"), [(1, 0), (0, 1)])
    def test_single_processor_mode(self, ui: int, background: int) -> None:
        """One worker in total, either way round, is single-processor mode."""
        config = WorkerConfig(ui_workers=ui, background_workers=background)
        assert config.single_processor
        assert config.total_workers == 1

    def test_counts_must_be_ints(self) -> None:
        """A worker count that is not an int is a TypeError naming the field."""
        with pytest.raises(TypeError, match="ui_workers must be an int"):
            WorkerConfig(ui_workers=1.5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="background_workers must be an int"):
            WorkerConfig(background_workers=True)


class TestBuffersAndGrace:
    @pytest.mark.parametrize(
        "field", ["ui_queue_buffer_size", "last_effort_buffer_size", "background_buffer_size"]
    )
    def test_negative_buffer(self, field: str) -> None:
        """A negative lane capacity is refused with the field name and value."""
        with pytest.raises(ConfigError, match=rf"^{field} cannot be negative, got -5$"):
            WorkerConfig(**{field: -5})

    def test_zero_buffer_means_unbounded(self) -> None:
        """Zero capacity is valid (asyncio's convention for unbounded)."""
        assert WorkerConfig(background_buffer_size=0).background_buffer_size == 0

    def test_negative_grace(self) -> None:
        """A negative interrupt_grace is refused with the value."""
        with pytest.raises(ConfigError, match=r"^interrupt_grace cannot be negative, got -0.5$"):
            WorkerConfig(interrupt_grace=-0.5)

    @pytest.mark.parametrize("value", [0, -1.0])
    def test_interrupt_warning_must_be_positive(self, value: float) -> None:
        """interrupt_warning is a positive number of seconds, or None to turn it off."""
        with pytest.raises(ConfigError, match="interrupt_warning must be > 0 seconds or None"):
            WorkerConfig(interrupt_warning=value)
        assert WorkerConfig(interrupt_warning=None).interrupt_warning is None

    def test_defaults(self) -> None:
        """Defaults are those docs/design.md lists."""
        config = WorkerConfig()
        assert (config.ui_workers, config.background_workers) == (1, 0)
        assert (
            config.ui_queue_buffer_size,
            config.last_effort_buffer_size,
            config.background_buffer_size,
        ) == (100, 100, 100)
        assert config.resource_factory is None
        assert config.interrupt_grace == 0.0
        assert config.preempt_background is False

    def test_frozen_and_keyword_only(self) -> None:
        """WorkerConfig is a frozen, keyword-only value."""
        config = WorkerConfig(ui_workers=2, background_workers=3)
        with pytest.raises(dataclasses.FrozenInstanceError):
            config.ui_workers = 5  # type: ignore[misc]
        with pytest.raises(TypeError):
            WorkerConfig(1, 2)  # type: ignore[misc]

    def test_resource_factory_must_be_callable(self) -> None:
        """A resource factory that cannot be called is a TypeError."""
        with pytest.raises(TypeError, match="resource_factory must be callable"):
            WorkerConfig(resource_factory="db")  # type: ignore[arg-type]


class TestProcessorCount:
    def test_zero(self) -> None:
        """TaskExecutor(0) raises ConfigError: there would be no worker at all."""
        with pytest.raises(
            ConfigError,
            match=r"^total workers cannot be zero: processor_count must be >= 1, got 0$",
        ):
            TaskExecutor(0)

    @pytest.mark.parametrize("count", [-1, -10])
    def test_negative(self, count: int) -> None:
        """TaskExecutor(n) with n < 0 says the count is negative, not that it is zero."""
        with pytest.raises(
            ConfigError,
            match=rf"^worker counts cannot be negative: processor_count must be >= 1, got {count}$",
        ):
            TaskExecutor(count)

    def test_one_is_single_processor(self) -> None:
        """TaskExecutor(1) is single-processor mode."""
        assert TaskExecutor(1).config == WorkerConfig(ui_workers=1, background_workers=0)

    def test_n_is_one_ui_and_n_minus_one_background(self) -> None:
        """TaskExecutor(4) is one UI worker and three background workers."""
        config = TaskExecutor(4).config
        assert (config.ui_workers, config.background_workers) == (1, 3)

    def test_from_config_needs_a_config(self) -> None:
        """from_config refuses anything but a WorkerConfig."""
        with pytest.raises(TypeError, match="config must be a WorkerConfig"):
            TaskExecutor.from_config({"ui_workers": 1})  # type: ignore[arg-type]

    def test_constructor_takes_a_config(self) -> None:
        """TaskExecutor(WorkerConfig(...)) uses that configuration, as from_config does."""
        config = WorkerConfig(ui_workers=2, background_workers=3, background_buffer_size=7)
        assert TaskExecutor(config).config is config
        assert TaskExecutor.from_config(config).config is config

    @pytest.mark.parametrize("value", [2.0, "2", True, None])
    def test_constructor_refuses_other_types(self, value: object) -> None:
        """Anything but an int or a WorkerConfig is a TypeError naming both choices."""
        with pytest.raises(TypeError, match="^TaskExecutor takes a processor count"):
            TaskExecutor(value)  # type: ignore[arg-type]
