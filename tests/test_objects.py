"""The columnar object table: views, columns, changes, gathering into batches, compaction."""
import copy

import numpy as np
import pytest

from vidpipe import Batch, BBox, Classification, Frame, Label, ObjectMeta, ObjectSet, make_element

IMG = np.zeros((100, 200, 3), np.uint8)


def batch_of(*per_frame):
    """Frames with objects given as (class_id, (x1, y1, x2, y2), confidence) per frame."""
    frames = []
    for sid, objs in enumerate(per_frame):
        f = Frame(IMG, sid, 0)
        for cid, box, conf in objs:
            f.objects.append(ObjectMeta(cid, BBox.from_xyxy(*box), conf, f"c{cid}"))
        frames.append(f)
    return Batch(frames)


def test_views_read_and_write_the_table():
    b = batch_of([(1, (10, 20, 30, 60), 0.9)], [(2, (0, 0, 5, 5), 0.5), (3, (1, 1, 2, 2), 0.4)])
    assert b.objects.frame.tolist() == [0, 1, 1]
    o = b.frames[1].objects[0]
    o.label, o.confidence, o.object_id = "bus", 0.75, 7
    o.bbox.left = 3  # moves the box, keeps its size
    o.classifications.append(Classification(2, [Label(0, "red", 0.8)]))
    o.user_meta["zone"] = 4
    objs = b.frames[1].objects
    assert objs.labels == ["bus", "c3"] and objs.object_id.tolist() == [7, -1]
    assert objs.xyxy[0].tolist() == [3, 0, 8, 5] and objs.confidence[0] == np.float32(0.75)
    assert b.frames[1].objects[0].classifications[0].top.label == "red"
    assert b.frames[1].objects[0].user_meta == {"zone": 4} and b.frames[1].objects[1].user_meta == {}
    assert b.frames[0].objects[0].to_dict() == {"class_id": 1, "label": "c1", "confidence": 0.9,
                                                 "bbox": [10.0, 20.0, 20.0, 40.0], "object_id": -1}


def test_an_object_moved_into_a_frame_reads_and_writes_its_new_row():
    """`frame.objects.append(o)` moves the view `o` to the new row: its box view follows it (it
    is kept per object view, so a stale one would read and write the old row)."""
    o = ObjectMeta(1, BBox(1, 2, 3, 4), 0.5, "a")
    assert o.bbox.left == 1
    f = Frame(IMG, 0, 0)
    f.objects.append(ObjectMeta(2, BBox(0, 0, 1, 1), 0.9, "b"))
    f.objects.append(o)
    o.bbox.left = 50
    assert o.bbox.as_ltwh() == (50, 2, 3, 4)
    assert f.objects.xyxy.tolist() == [[0, 0, 1, 1], [50, 2, 53, 6]]


def test_masks_add_remove_and_compaction_at_the_pad():
    b = batch_of([(0, (0, 0, 10, 10), 0.9), (0, (20, 0, 30, 10), 0.2), (1, (40, 0, 50, 10), 0.6)])
    objs = b.frames[0].objects
    low = objs[objs.confidence < 0.5]
    assert isinstance(low, ObjectSet) and low.xyxy.tolist() == [[20, 0, 30, 10]]
    kept = objs[0]
    objs.remove(low)
    assert len(b.frames[0].objects) == 2 and b.table.n == 3  # marked, not moved: views stay valid
    assert kept.confidence == np.float32(0.9)
    new = b.frames[0].objects.add(xyxy=[[1, 1, 2, 2], [3, 3, 4, 4]], class_id=5, label=["a", "b"], speed=[1.5, 2.5])
    assert new.labels == ["a", "b"] and new.data("speed").tolist() == [1.5, 2.5]
    b.compact()
    assert b.table.n == 4 and b.table.dead == 0
    assert b.frames[0].objects.class_id.tolist() == [0, 1, 5, 5]
    assert np.isnan(b.frames[0].objects.data("speed")[:2]).all()
    b.frames[0].objects[:] = [o for o in b.frames[0].objects if o.class_id != 5]
    assert b.frames[0].objects.class_id.tolist() == [0, 1]


def test_rebatching_keeps_objects_parents_and_extra_columns():
    b = batch_of([(0, (0, 0, 10, 10), 0.9)], [(1, (5, 5, 50, 50), 0.8)])
    car = b.frames[1].objects[0]
    child = b.frames[1].objects.add(xyxy=[[10, 10, 20, 20]], class_id=9, label="plate", parent=car._r)
    b.objects.set_data("speed", np.array([1.0, 2.0, 3.0]))
    # demux-like: one frame per batch, then muxed again in the other order
    singles = [Batch([f]) for f in b.frames]
    again = Batch([singles[1].frames[0], singles[0].frames[0]])
    f0 = again.frames[0]
    assert f0.source_id == 1 and f0.objects.class_id.tolist() == [1, 9]
    plate = f0.objects[1]
    assert plate.parent is not None and plate.parent.class_id == 1 and plate.parent.label == "c1"
    assert child.labels == ["plate"]
    assert again.objects.data("speed").tolist() == [2.0, 3.0, 1.0]
    again.frames[1].objects.add(xyxy=[[0, 0, 1, 1]] * 9, class_id=4)  # grows past the capacity
    assert np.isnan(again.objects.data("speed")[-9:]).all()  # new rows: the float column's default
    assert again.objects.data("speed")[:3].tolist() == [2.0, 3.0, 1.0]
    alone = Batch([again.frames[1]])  # rows taken from one table: extra columns keep its capacity
    alone.frames[0].objects.add(xyxy=[[0, 0, 1, 1]] * 2, class_id=4, speed=7.0)  # 12 rows: within the taken table's capacity (16)
    np.testing.assert_array_equal(alone.objects.data("speed"), [1.0] + [np.nan] * 9 + [7.0, 7.0])


def test_deepcopy_gives_an_independent_batch():
    b = batch_of([(0, (0, 0, 10, 10), 0.9)])
    c = copy.deepcopy(b)
    c.frames[0].objects[0].label = "changed"
    assert b.frames[0].objects[0].label == "c0" and c.frames[0].meta.frame is c.frames[0]


def test_supervision_round_trip():
    pytest.importorskip("supervision")
    b = batch_of([(2, (10, 10, 40, 30), 0.8), (0, (50, 50, 60, 90), 0.6)])
    d = b.frames[0].objects.to_supervision()
    assert d.xyxy.tolist() == [[10, 10, 40, 30], [50, 50, 60, 90]] and d.class_id.tolist() == [2, 0]
    f = Frame(IMG, 0, 1)
    f.objects.extend(ObjectSet.from_supervision(d))
    assert f.objects.labels == ["c2", "c0"] and f.objects.confidence.tolist() == pytest.approx([0.8, 0.6])


def test_tiler_maps_boxes_and_display_meta_into_cells():
    from vidpipe import Line, Text
    t = make_element("tiler", "t", width=400, height=100, rows=1, columns=2)
    b = batch_of([(0, (20, 10, 60, 50), 0.9)], [(1, (100, 0, 200, 100), 0.8)])
    b.frames[1].display_meta.lines.append(Line(0, 0, 200, 100))
    b.frames[1].display_meta.texts.append(Text("hi", 10, 10))
    out = t.process(b).frames[0]
    assert out.objects.xyxy.tolist() == [[20, 10, 60, 50], [300, 0, 400, 100]]  # cells are 200x100
    assert out.objects.labels == ["c0", "c1"]
    ln = out.display_meta.lines[0]
    assert (ln.x1, ln.y1, ln.x2, ln.y2) == (200, 0, 400, 100) and out.display_meta.texts[0].x == 210
